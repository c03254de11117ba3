//! Node pools as EKS managed node groups: the AMI that matches the instance type, the labels
//! and taints a pool's nodes carry, and the scaling a create or an update asks for.

use std::collections::BTreeMap;

use crate::platforms::{NodePoolSpec, Taint};

pub use crate::platforms::managed::pools::{
    gpu_taint, scaling, LABEL_GPU_PRESENT, LABEL_GPU_SHARING, LABEL_POOL, LABEL_PURPOSE,
};

/// What an instance type is, for its AMI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// NVIDIA GPUs on x86_64 (g4dn, g5, g6, g6e, gr6, p3, p4d, p5, p6 …).
    NvidiaX86,
    /// NVIDIA GPUs on Graviton (g5g).
    NvidiaArm,
    /// AWS Inferentia and Trainium (inf2, trn1, trn2).
    Neuron,
    /// CPUs only, x86_64.
    CpuX86,
    /// CPUs only, Graviton.
    CpuArm,
}

impl Family {
    /// The EKS AMI type (Amazon Linux 2023) for nodes of this family.
    pub fn ami_type(self) -> &'static str {
        match self {
            Family::NvidiaX86 => "AL2023_x86_64_NVIDIA",
            Family::NvidiaArm => "AL2023_ARM_64_NVIDIA",
            Family::Neuron => "AL2023_x86_64_NEURON",
            Family::CpuX86 => "AL2023_x86_64_STANDARD",
            Family::CpuArm => "AL2023_ARM_64_STANDARD",
        }
    }

    pub fn has_nvidia_gpus(self) -> bool {
        matches!(self, Family::NvidiaX86 | Family::NvidiaArm)
    }
}

const NVIDIA_X86: &[&str] = &[
    "g4dn", "g5", "g6", "g6e", "g6f", "gr6", "gr6f", "g7e", "p3", "p3dn", "p4d", "p4de", "p5",
    "p5e", "p5en", "p6-b200", "p6-b300",
];
const NVIDIA_ARM: &[&str] = &["g5g", "p6e-gb200"];
const NEURON: &[&str] = &["inf2", "trn1", "trn1n", "trn2", "trn2u"];
/// General purpose, compute, memory and burstable families: a letter (or two) and a generation.
const CPU_SERIES: &[&str] = &[
    "m", "c", "r", "t", "x", "z", "i", "im", "is", "d", "h", "u", "hpc",
];

/// The family of an EC2 instance type such as `g5.xlarge`; `Err` says why it is not known.
pub fn classify(instance_type: &str) -> Result<Family, String> {
    let Some((family, size)) = instance_type.split_once('.') else {
        return Err(format!(
            "{instance_type:?} is not an EC2 instance type (FAMILY.SIZE, e.g. \"g5.xlarge\")"
        ));
    };
    if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("{instance_type:?} has no valid size after the '.'"));
    }
    if NVIDIA_X86.contains(&family) {
        return Ok(Family::NvidiaX86);
    }
    if NVIDIA_ARM.contains(&family) {
        return Ok(Family::NvidiaArm);
    }
    if NEURON.contains(&family) {
        return Ok(Family::Neuron);
    }
    if family == "g4ad" || family == "inf1" {
        return Err(format!(
            "{instance_type:?} has no Amazon Linux 2023 EKS AMI with its accelerator (AMD GPUs and Inferentia 1 are not supported); use an NVIDIA family such as g5 or g6, or inf2"
        ));
    }
    // SERIES GENERATION [ATTRIBUTES][-flex]: m7i, c7gn, r6id, t4g, m7i-flex, hpc7g
    let base = family.strip_suffix("-flex").unwrap_or(family);
    let series_end = base
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(base.len());
    let (series, rest) = base.split_at(series_end);
    let gen_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (generation, attributes) = rest.split_at(gen_end);
    if CPU_SERIES.contains(&series)
        && !generation.is_empty()
        && attributes.chars().all(|c| c.is_ascii_lowercase())
    {
        return Ok(if attributes.contains('g') {
            Family::CpuArm
        } else {
            Family::CpuX86
        });
    }
    Err(format!(
        "cannot tell which AMI instance type {instance_type:?} needs: it is not a known GPU (g4dn, g5, g5g, g6, g6e, gr6, p4d, p5 …), Neuron (inf2, trn1, trn2) or CPU (m, c, r, t … families) type"
    ))
}

/// The one family of a pool's instance types; they must share an AMI.
pub fn pool_family(types: &[String]) -> Result<Family, String> {
    let mut found: Option<(Family, &str)> = None;
    for t in types {
        let f = classify(t)?;
        match found {
            Some((g, first)) if g != f => {
                return Err(format!(
                    "instance types {first:?} and {t:?} need different AMIs ({} and {}); put them in separate node pools",
                    g.ami_type(),
                    f.ami_type()
                ))
            }
            Some(_) => {}
            None => found = Some((f, t)),
        }
    }
    found
        .map(|(f, _)| f)
        .ok_or_else(|| "a node pool on aws needs instance_type or instance_types".to_string())
}

/// The labels a pool's nodes carry: the declared ones, and the provider's.
pub fn labels(pool: &NodePoolSpec, family: Family) -> BTreeMap<String, String> {
    crate::platforms::managed::pools::labels(pool, family.has_nvidia_gpus())
}

/// The taints a pool's nodes carry: the declared ones; a GPU pool that declares none gets
/// `nvidia.com/gpu=true:NoSchedule`.
pub fn taints(pool: &NodePoolSpec, family: Family) -> Vec<Taint> {
    crate::platforms::managed::pools::taints(pool, family.has_nvidia_gpus())
}

/// EKS's name of a taint effect (`NO_SCHEDULE`) from Kubernetes' (`NoSchedule`).
pub fn eks_effect(k8s: &str) -> &'static str {
    match k8s {
        "NoExecute" => "NO_EXECUTE",
        "PreferNoSchedule" => "PREFER_NO_SCHEDULE",
        _ => "NO_SCHEDULE",
    }
}

/// Kubernetes' name of a taint effect from EKS's.
pub fn k8s_effect(eks: &str) -> &'static str {
    match eks {
        "NO_EXECUTE" => "NoExecute",
        "PREFER_NO_SCHEDULE" => "PreferNoSchedule",
        _ => "NoSchedule",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> NodePoolSpec {
        NodePoolSpec {
            name: "gpu".into(),
            purpose: "inference".into(),
            instance_types: vec!["g5.xlarge".into()],
            gpu_count: Some(1),
            gpu_type: None,
            min_size: Some(1),
            max_size: Some(4),
            desired_size: None,
            spot: false,
            labels: BTreeMap::new(),
            taints: vec![],
            gpu_sharing: None,
            gpu_instance: None,
            gpu_driver: None,
            spot_max_price: None,
        }
    }

    #[test]
    fn instance_types_get_the_ami_of_their_accelerator() {
        for (t, ami) in [
            ("g4dn.xlarge", "AL2023_x86_64_NVIDIA"),
            ("g5.48xlarge", "AL2023_x86_64_NVIDIA"),
            ("g6e.2xlarge", "AL2023_x86_64_NVIDIA"),
            ("p5.48xlarge", "AL2023_x86_64_NVIDIA"),
            ("p4d.24xlarge", "AL2023_x86_64_NVIDIA"),
            ("g5g.xlarge", "AL2023_ARM_64_NVIDIA"),
            ("inf2.xlarge", "AL2023_x86_64_NEURON"),
            ("m7i.large", "AL2023_x86_64_STANDARD"),
            ("m7i-flex.large", "AL2023_x86_64_STANDARD"),
            ("c6a.2xlarge", "AL2023_x86_64_STANDARD"),
            ("t3.medium", "AL2023_x86_64_STANDARD"),
            ("m7g.large", "AL2023_ARM_64_STANDARD"),
            ("c7gn.xlarge", "AL2023_ARM_64_STANDARD"),
            ("t4g.small", "AL2023_ARM_64_STANDARD"),
        ] {
            assert_eq!(classify(t).unwrap().ami_type(), ami, "{t}");
        }
        for bad in [
            "g5",
            "xlarge",
            "g4ad.xlarge",
            "inf1.xlarge",
            "q9.large",
            "Standard_NC6s_v3",
            "g5.",
        ] {
            assert!(classify(bad).is_err(), "{bad}");
        }
        assert!(pool_family(&["g5.xlarge".into(), "m7i.large".into()])
            .unwrap_err()
            .contains("separate node pools"));
        assert!(pool_family(&[]).is_err());
    }

    #[test]
    fn gpu_pools_are_tainted_and_labelled_unless_they_say_otherwise() {
        let p = pool();
        let f = pool_family(&p.instance_types).unwrap();
        assert_eq!(taints(&p, f), vec![gpu_taint()]);
        let l = labels(&p, f);
        assert_eq!(l[LABEL_GPU_PRESENT], "true");
        assert_eq!(l[LABEL_POOL], "gpu");
        assert!(!l.contains_key(LABEL_GPU_SHARING));
        let shared = NodePoolSpec {
            gpu_sharing: Some(4),
            ..pool()
        };
        assert_eq!(labels(&shared, f)[LABEL_GPU_SHARING], "4");
        let own = NodePoolSpec {
            taints: vec![Taint {
                key: "team".into(),
                value: Some("ml".into()),
                effect: "NoExecute".into(),
            }],
            ..pool()
        };
        assert_eq!(taints(&own, f).len(), 1);
        assert_eq!(taints(&own, f)[0].key, "team");
        let cpu = NodePoolSpec {
            instance_types: vec!["m7i.large".into()],
            ..pool()
        };
        let cf = pool_family(&cpu.instance_types).unwrap();
        assert!(taints(&cpu, cf).is_empty());
        assert!(!labels(&cpu, cf).contains_key(LABEL_GPU_PRESENT));
    }

    #[test]
    fn desired_size_is_honoured_on_create_and_clamped_on_update() {
        // Create: declared desired is used; undeclared starts at min.
        assert_eq!(
            scaling(
                &NodePoolSpec {
                    desired_size: Some(3),
                    ..pool()
                },
                None
            ),
            (1, 4, 3)
        );
        assert_eq!(scaling(&pool(), None), (1, 4, 1));
        // Update without a declared desired: the autoscaler's value stays, clamped.
        assert_eq!(scaling(&pool(), Some(3)), (1, 4, 3));
        assert_eq!(
            scaling(
                &NodePoolSpec {
                    max_size: Some(2),
                    ..pool()
                },
                Some(3)
            ),
            (1, 2, 2)
        );
        assert_eq!(
            scaling(
                &NodePoolSpec {
                    min_size: Some(4),
                    max_size: Some(6),
                    ..pool()
                },
                Some(1)
            ),
            (4, 6, 4)
        );
        // Update with a declared desired: it wins over the current size.
        assert_eq!(
            scaling(
                &NodePoolSpec {
                    desired_size: Some(2),
                    ..pool()
                },
                Some(4)
            ),
            (1, 4, 2)
        );
        // min 0 is allowed (scale to zero); max is at least 1, as EKS requires.
        assert_eq!(
            scaling(
                &NodePoolSpec {
                    min_size: Some(0),
                    max_size: Some(0),
                    ..pool()
                },
                None
            ),
            (0, 1, 0)
        );
    }

    #[test]
    fn taint_effects_map_both_ways() {
        for k in ["NoSchedule", "NoExecute", "PreferNoSchedule"] {
            assert_eq!(k8s_effect(eks_effect(k)), k);
        }
    }
}
