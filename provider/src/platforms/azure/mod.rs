//! The `azure` platform, being built: AKS clusters with GPU node pools, ACR and endpoints on
//! them, as [`aws`](super::aws) is for EKS. `platform = "azure"` is still refused at plan
//! (by `platforms::resolve`) until the cluster code lands.
//!
//! | file | what |
//! |---|---|
//! | [`arm`] | a typed Azure Resource Manager client: tokens, retries, long-running operations, errors |
//! | [`aks`] | the managed cluster and agent pool bodies, checked against Microsoft's models |

pub mod aks;
pub mod arm;
