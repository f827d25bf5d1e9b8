//! What AWS's service models (`labrun-models`) say about a catalog operation: whether the
//! service pages its answers (a paginator), and which waiters poll it. Validation uses this for
//! `pages:` and `wait:`; the engine uses the same answers at run time.

use crate::catalog::Operation;
use labrun_models::{Paginator, Service};
use std::sync::Arc;

/// The model of the operation's service (parsed once per process). None for labrun's own
/// operations (`labrun:*`) and for services labrun carries no model of.
pub fn service(op: &Operation) -> Option<Arc<Service>> {
    if op.synthetic {
        return None;
    }
    labrun_models::load(op.service()).ok()
}

/// How to follow the pages of a read-only operation, if its model pages it.
pub fn paginator(op: &Operation) -> Option<Paginator> {
    if !op.read_only {
        return None;
    }
    service(op)?.paginators.get(op.action()).cloned()
}

/// The operation a waiter definition polls (`DescribeInstances`), if it names one.
pub fn waiter_operation(definition: &serde_json::Value) -> Option<&str> {
    definition.get("operation").and_then(serde_json::Value::as_str)
}

/// Names of the waiters of `service` that poll `action`, in the model's (alphabetical) order.
pub fn waiters_polling<'a>(service: &'a Service, action: &str) -> Vec<&'a str> {
    service.waiters.iter().filter(|(_, w)| waiter_operation(w) == Some(action)).map(|(n, _)| n.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    #[test]
    fn reads_have_the_models_paginators_and_waiters() {
        let vpcs = catalog::operation("ec2:DescribeVpcs").unwrap();
        let p = paginator(vpcs).expect("DescribeVpcs pages");
        assert_eq!(p.output_token.all(), ["NextToken"]);
        assert!(paginator(catalog::operation("ec2:DescribeVpcAttribute").unwrap()).is_none());
        assert!(paginator(catalog::operation("ec2:CreateVpc").unwrap()).is_none(), "a change is never paged");
        assert!(service(catalog::operation("labrun:CheckSsmReachability").unwrap()).is_none());
        let ec2 = service(vpcs).unwrap();
        assert_eq!(waiters_polling(&ec2, "DescribeVpcs"), ["VpcAvailable", "VpcExists"]);
    }
}
