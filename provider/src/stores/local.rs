//! The `local` backend: a directory on this machine.

use std::path::{Path, PathBuf};

use super::{Report, Settings, Source, Store, StoreError, Upload};

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> Self {
        LocalStore { root }
    }
    fn dir(&self, name: &str, version: &str) -> PathBuf {
        self.root.join(name).join(version)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(StoreError::Io {
            path: String::new(),
            source: std::io::Error::other(e.to_string()),
        })
    })
}

fn list_versions(root: &Path) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    let names = match std::fs::read_dir(root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(root)(e)),
    };
    for n in names.flatten() {
        if !n.path().is_dir() {
            continue;
        }
        let Ok(versions) = std::fs::read_dir(n.path()) else {
            continue;
        };
        for v in versions.flatten() {
            if v.path().join("model.json").is_file() {
                out.push((
                    n.file_name().to_string_lossy().into_owned(),
                    v.file_name().to_string_lossy().into_owned(),
                ));
            }
        }
    }
    out.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| modelplane_serve::repository::version_order(&a.1, &b.1))
    });
    Ok(out)
}

#[tfplugin::async_trait]
impl Store for LocalStore {
    fn uri(&self) -> String {
        format!("file://{}", self.root.display())
    }
    fn repository(&self) -> String {
        self.root.display().to_string()
    }
    fn version_uri(&self, name: &str, version: &str) -> String {
        format!("file://{}", self.dir(name, version).display())
    }

    async fn exists(&self) -> Result<bool, StoreError> {
        Ok(self.root.is_dir())
    }

    async fn configure(&self, _settings: &Settings) -> Result<Report, StoreError> {
        Ok(Report::default())
    }

    async fn inspect(&self) -> Result<Report, StoreError> {
        Ok(Report::default())
    }

    async fn create(&self, _settings: &Settings) -> Result<Report, StoreError> {
        let root = self.root.clone();
        blocking(move || {
            std::fs::create_dir_all(&root).map_err(io(&root))?;
            let n = list_versions(&root)?.len();
            if n > 0 {
                return Err(StoreError::Conflict(format!(
                    "{} already holds {n} model version(s); import it (terraform import ADDRESS file://{}) or choose another path",
                    root.display(),
                    root.display()
                )));
            }
            Ok(Report::default())
        })
        .await
    }

    async fn destroy(&self, force: bool) -> Result<(), StoreError> {
        let root = self.root.clone();
        blocking(move || {
            let versions = list_versions(&root)?;
            if !versions.is_empty() && !force {
                return Err(super::still_holds(
                    &format!("the store at {}", root.display()),
                    &versions,
                ));
            }
            match std::fs::remove_dir_all(&root) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&root)(e)),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn list(&self) -> Result<Vec<(String, String)>, StoreError> {
        let root = self.root.clone();
        blocking(move || list_versions(&root)).await
    }

    async fn put_version(
        &self,
        name: &str,
        version: &str,
        files: Vec<Upload>,
    ) -> Result<(), StoreError> {
        let (parent, dir) = (self.root.join(name), self.dir(name, version));
        let tmp = parent.join(format!(".{version}.incoming-{}", std::process::id()));
        blocking(move || {
            std::fs::create_dir_all(&parent).map_err(io(&parent))?;
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
            let (meta, rest): (Vec<Upload>, Vec<Upload>) =
                files.into_iter().partition(|u| u.name == "model.json");
            for u in rest.into_iter().chain(meta) {
                let to = tmp.join(&u.name);
                match u.from {
                    Source::File(p) => std::fs::copy(&p, &to).map(|_| ()).map_err(io(&p))?,
                    Source::Bytes(b) => std::fs::write(&to, b).map_err(io(&to))?,
                }
            }
            // A folder without model.json is not a version (an interrupted upload): replace it.
            if dir.exists() && !dir.join("model.json").is_file() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            std::fs::rename(&tmp, &dir).map_err(|e| {
                let _ = std::fs::remove_dir_all(&tmp);
                if dir.join("model.json").is_file() {
                    StoreError::Conflict(format!("{} already exists", dir.display()))
                } else {
                    io(&dir)(e)
                }
            })
        })
        .await
    }

    async fn get(
        &self,
        name: &str,
        version: &str,
        file: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let p = self.dir(name, version).join(file);
        blocking(move || match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p)(e)),
        })
        .await
    }

    async fn download(
        &self,
        name: &str,
        version: &str,
        file: &str,
        to: &Path,
        want: Option<&str>,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let (from, to) = (self.dir(name, version).join(file), to.to_path_buf());
        let want = want.map(String::from);
        blocking(move || {
            match std::fs::copy(&from, &to) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io(&from)(e)),
            }
            let (sha, size) = modelplane_serve::signature::file_digest(&to).map_err(io(&to))?;
            if let Some(w) = want.filter(|w| !w.eq_ignore_ascii_case(&sha)) {
                let _ = std::fs::remove_file(&to);
                return Err(StoreError::Conflict(format!(
                    "{}: sha256 is {sha}, but model.json records {w}; the artifact was replaced or damaged",
                    from.display()
                )));
            }
            Ok(Some((sha, size)))
        })
        .await
    }

    async fn digest(
        &self,
        name: &str,
        version: &str,
        file: &str,
    ) -> Result<Option<(String, u64)>, StoreError> {
        let p = self.dir(name, version).join(file);
        blocking(move || match modelplane_serve::signature::file_digest(&p) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p)(e)),
        })
        .await
    }

    async fn put_file(
        &self,
        name: &str,
        version: &str,
        file: &str,
        content: Vec<u8>,
    ) -> Result<(), StoreError> {
        let dir = self.dir(name, version);
        let (p, tmp) = (
            dir.join(file),
            dir.join(format!(".{file}.incoming-{}", std::process::id())),
        );
        blocking(move || {
            // A shared endpoint's registry folder is made by its first attachment.
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            std::fs::write(&tmp, content).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &p).map_err(io(&p))
        })
        .await
    }

    async fn list_files(&self, name: &str, version: &str) -> Result<Vec<String>, StoreError> {
        let dir = self.dir(name, version);
        blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io(&dir)(e)),
            };
            let mut out: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                // Files being written (`.NAME.incoming-PID`) are not there yet.
                .filter(|n| !n.starts_with('.'))
                .collect();
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn delete_file(&self, name: &str, version: &str, file: &str) -> Result<(), StoreError> {
        let p = self.dir(name, version).join(file);
        blocking(move || match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&p)(e)),
            _ => Ok(()),
        })
        .await
    }

    async fn delete_version(&self, name: &str, version: &str) -> Result<(), StoreError> {
        let (dir, parent) = (self.dir(name, version), self.root.join(name));
        blocking(move || {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&dir)(e)),
                _ => {}
            }
            // The model's folder goes with its last version.
            let _ = std::fs::remove_dir(&parent);
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn versions_are_written_whole_and_listed() {
        let td = tempfile::tempdir().unwrap();
        let s = LocalStore::new(td.path().join("store"));
        s.create(&Settings::default()).await.unwrap();
        assert!(s.list().await.unwrap().is_empty());
        s.put_version(
            "iris",
            "10",
            vec![Upload {
                name: "model.json".into(),
                from: Source::Bytes(b"{}".to_vec()),
            }],
        )
        .await
        .unwrap();
        s.put_version(
            "iris",
            "9",
            vec![Upload {
                name: "model.json".into(),
                from: Source::Bytes(b"{}".to_vec()),
            }],
        )
        .await
        .unwrap();
        assert_eq!(
            s.list().await.unwrap(),
            vec![("iris".into(), "9".into()), ("iris".into(), "10".into())]
        );
        let again = s
            .put_version(
                "iris",
                "9",
                vec![Upload {
                    name: "model.json".into(),
                    from: Source::Bytes(b"{}".to_vec()),
                }],
            )
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        let refused = s.destroy(false).await.unwrap_err().to_string();
        assert!(
            refused.contains("2 model version(s)") && refused.contains("force_destroy"),
            "{refused}"
        );
        s.delete_version("iris", "9").await.unwrap();
        s.delete_version("iris", "9").await.unwrap();
        s.destroy(true).await.unwrap();
        assert!(!s.exists().await.unwrap());
    }

    #[tokio::test]
    async fn a_non_empty_directory_is_not_taken_over() {
        let td = tempfile::tempdir().unwrap();
        let s = LocalStore::new(td.path().to_path_buf());
        s.put_version(
            "m",
            "1",
            vec![Upload {
                name: "model.json".into(),
                from: Source::Bytes(b"{}".to_vec()),
            }],
        )
        .await
        .unwrap();
        let e = s
            .create(&Settings::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("already holds 1 model version") && e.contains("terraform import"),
            "{e}"
        );
    }
}
