//! `labrun plan`: every call with its rendered parameters and the AWS CLI equivalent, made
//! without calling anything. Values known only at run time show as `<steps.id.output>`.

use crate::template::{Context, Renderer};
use labrun_lab::catalog::{Operation, kebab};
use labrun_lab::model::{Chapter, Workshop};
use serde::Serialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Serialize)]
pub struct PlannedCall {
    pub chapter: String,
    pub step: String,
    pub title: Option<String>,
    pub call: String,
    pub read_only: bool,
    pub params: Value,
    /// The equivalent AWS CLI command, or a note for labrun's own operations.
    pub cli: String,
    /// `when`, `for_each` item, or "needs real AWS" remarks.
    pub notes: Vec<String>,
    pub location: labrun_lab::Location,
}

pub fn plan_chapter(w: &Workshop, chapter: &Chapter, region: &str, overrides: &Map<String, Value>) -> Vec<PlannedCall> {
    let renderer = Renderer::new();
    let mut vars = w.vars.clone();
    vars.extend(chapter.vars.clone());
    vars.extend(overrides.clone());
    let lab = [
        ("region", json!(region)),
        ("account", json!("<account>")),
        ("run_id", json!("<run-id>")),
        ("workshop", json!(w.id)),
        ("chapter", json!(chapter.label())),
    ];
    let mut ctx = Context { vars, steps: Map::new(), lab: lab.into_iter().map(|(k, v)| (k.to_string(), v)).collect(), item: None };
    let mut out = Vec::new();
    for step in &chapter.steps {
        let mut notes = Vec::new();
        if let Some(w) = &step.when {
            notes.push(format!("only when: {w}"));
        }
        if step.needs_real_aws() {
            notes.push("needs a real AWS account (a gap on the emulator)".into());
        }
        let items: Vec<Option<Value>> = match &step.for_each {
            None => vec![None],
            Some(list) => match renderer.render(list, &ctx) {
                Ok(Value::Array(items)) => items.into_iter().map(Some).collect(),
                _ => vec![Some(json!("<item>"))],
            },
        };
        for item in items {
            let mut c = ctx.clone();
            c.item = item.clone();
            let params = renderer.render(&step.with, &c).unwrap_or_else(|_| step.with.clone());
            let mut notes = notes.clone();
            if let Some(i) = &item {
                notes.push(format!("for item {}", crate::assert::short(i)));
            }
            out.push(PlannedCall {
                chapter: chapter.label().to_string(),
                step: step.id.clone(),
                title: step.title.clone(),
                call: step.call.clone(),
                read_only: step.op.read_only,
                cli: cli_command(step.op, &params, region),
                params,
                notes,
                location: step.location.clone(),
            });
        }
        let placeholders: Map<String, Value> =
            step.outputs.iter().map(|(n, _)| (n.clone(), json!(format!("<steps.{}.{}>", step.id, n)))).collect();
        ctx.steps.insert(step.id.clone(), Value::Object(placeholders));
    }
    out
}

/// `aws ec2 create-vpc --cidr-block 10.10.0.0/16 ...` for rendered parameters.
pub fn cli_command(op: &Operation, params: &Value, region: &str) -> String {
    if op.synthetic {
        return format!("(labrun's own check, computed from describe calls: {})", params_inline(params));
    }
    let mut parts = vec![op.cli_command()];
    if let Value::Object(m) = params {
        for (k, v) in m {
            let flag = kebab(k);
            match v {
                Value::Bool(true) => parts.push(format!("--{flag}")),
                Value::Bool(false) => parts.push(format!("--no-{flag}")),
                Value::String(s) => parts.push(format!("--{flag} {}", shell_quote(s))),
                Value::Number(n) => parts.push(format!("--{flag} {n}")),
                Value::Array(items) if items.iter().all(Value::is_string) => {
                    let words: Vec<String> = items.iter().filter_map(Value::as_str).map(shell_quote).collect();
                    parts.push(format!("--{flag} {}", words.join(" ")));
                }
                other => parts.push(format!("--{flag} {}", shell_quote(&serde_json::to_string(other).unwrap_or_default()))),
            }
        }
    }
    if op.service() != "iam" {
        parts.push(format!("--region {region}"));
    }
    parts.join(" ")
}

fn params_inline(params: &Value) -> String {
    serde_json::to_string(params).unwrap_or_default()
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use labrun_lab::catalog::operation;

    #[test]
    fn cli_rendering() {
        let op = operation("ec2:CreateVpcEndpoint").unwrap();
        let p = json!({"VpcId": "vpc-1", "ServiceName": "com.amazonaws.ap-southeast-1.ssm", "SubnetIds": ["subnet-1"], "PrivateDnsEnabled": true,
                       "TagSpecifications": [{"ResourceType": "vpc-endpoint", "Tags": [{"Key": "Name", "Value": "SSM"}]}]});
        assert_eq!(
            cli_command(op, &p, "ap-southeast-1"),
            "aws ec2 create-vpc-endpoint --vpc-id vpc-1 --service-name com.amazonaws.ap-southeast-1.ssm --subnet-ids subnet-1 --private-dns-enabled \
             --tag-specifications '[{\"ResourceType\":\"vpc-endpoint\",\"Tags\":[{\"Key\":\"Name\",\"Value\":\"SSM\"}]}]' --region ap-southeast-1"
        );
        let op = operation("ec2:DescribeVpcs").unwrap();
        let p = json!({"Filters": [{"Name": "tag:Name", "Values": ["Lab VPC"]}]});
        assert!(cli_command(op, &p, "us-east-1").contains("--filters '[{\"Name\":\"tag:Name\",\"Values\":[\"Lab VPC\"]}]'"));
    }
}
