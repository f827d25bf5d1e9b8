//! labrun's domain words, each spelled in one place: the tags it puts on what it creates, the
//! kinds of resource its inventory and sweep name, the `lab.*` template fields, and the
//! capabilities a step can require.

use serde::Serialize;

/// The `labrun:*` tags every create carries.
pub mod tag {
    pub const WORKSHOP: &str = "labrun:workshop";
    pub const CHAPTER: &str = "labrun:chapter";
    /// The run that made it: `down`, the sweep and the lookup after a lost answer use it.
    pub const RUN: &str = "labrun:run";
    /// `chapter/step` (with `/n` for item n of a loop): which step made it.
    pub const STEP: &str = "labrun:step";
    /// `none` where the author asked labrun to leave the resource; the sweep obeys.
    pub const CLEANUP: &str = "labrun:cleanup";
}

/// Resource kinds, as EC2 names them in `TagSpecifications` and as reports name what leaked or
/// was swept.
pub mod kind {
    pub const VPC: &str = "vpc";
    pub const SUBNET: &str = "subnet";
    pub const INTERNET_GATEWAY: &str = "internet-gateway";
    pub const ROUTE_TABLE: &str = "route-table";
    pub const SECURITY_GROUP: &str = "security-group";
    pub const VPC_ENDPOINT: &str = "vpc-endpoint";
    pub const INSTANCE: &str = "instance";
    pub const KEY_PAIR: &str = "key-pair";
    pub const IAM_ROLE: &str = "iam-role";
    pub const INSTANCE_PROFILE: &str = "instance-profile";
    pub const IAM_USER: &str = "iam-user";
    pub const BUCKET: &str = "bucket";
    pub const SSM_DOCUMENT: &str = "ssm-document";
    pub const SSM_PARAMETER: &str = "ssm-parameter";
}

/// The fields of `lab.*` in templates.
pub mod lab_field {
    pub const REGION: &str = "region";
    pub const ACCOUNT: &str = "account";
    pub const RUN_ID: &str = "run_id";
    pub const WORKSHOP: &str = "workshop";
    pub const CHAPTER: &str = "chapter";
    pub const ALL: &[&str] = &[REGION, ACCOUNT, RUN_ID, WORKSHOP, CHAPTER];
}

/// What a step can declare it needs (`requires: [real-aws]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Capability {
    /// A real AWS account: on an emulator the step is a gap.
    #[serde(rename = "real-aws")]
    RealAws,
}

impl Capability {
    pub const ALL: &[Capability] = &[Capability::RealAws];
    pub const NAMES: &[&str] = &["real-aws"];

    pub fn name(self) -> &'static str {
        match self {
            Capability::RealAws => "real-aws",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_round_trip() {
        assert_eq!(Capability::ALL.iter().map(|c| c.name()).collect::<Vec<_>>(), Capability::NAMES);
        assert_eq!(Capability::parse("real-aws"), Some(Capability::RealAws));
        assert_eq!(Capability::parse("real_aws"), None);
    }
}
