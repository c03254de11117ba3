//! The `azure` platform, being built: AKS clusters with GPU node pools, ACR and endpoints on
//! them, as [`aws`](super::aws) is for EKS. `platform = "azure"` is still refused at plan
//! (by `platforms::resolve`) until the cluster code lands.
//!
//! | file | what |
//! |---|---|
//! | [`arm`] | a typed Azure Resource Manager client: tokens, retries, long-running operations, errors |

pub mod arm;
