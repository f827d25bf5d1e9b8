//! JSON Schema of a lab block (a list of steps), generated from the catalog so editors can
//! complete operation names and their parameters.
//!
//! Every operation of every embedded service model is a catalog operation; a schema of all of
//! them measured 2.6 MB compact, 7.2 MB pretty (EC2 alone 0.77 MB; `all_services_measured`
//! below), too much to commit or for an editor to load for every file. So [`schema`] (`labrun schema`, the committed
//! `docs/lab-schema.json`) has the curated operations with their full parameters and accepts
//! any other `service:Action` name, and [`schema_for`] (`labrun schema SERVICE`, `labrun schema
//! service:Action`) has every operation of one service, or one operation. Structures of the
//! models are written once each under `$defs` (`ec2.Filter`) and referred to.

use crate::catalog::{self, Operation, Param, Ty};
use crate::model::Matcher;
use serde_json::{Value, json};

/// Builds parameter schemas, collecting the models' structures under `$defs`.
#[derive(Default)]
struct Gen {
    defs: serde_json::Map<String, Value>,
}

impl Gen {
    fn ty_schema(&mut self, ty: &Ty, service: &str) -> Value {
        // Any string may be a template that renders to the right type at run time.
        let template = json!({"type": "string", "pattern": "\\{\\{"});
        let mut ty_schema = |t: &Ty| self.ty_schema(t, service);
        match ty {
            Ty::Str => json!({"type": "string"}),
            Ty::Bool => json!({"anyOf": [{"type": "boolean"}, template]}),
            Ty::Int => json!({"anyOf": [{"type": "integer"}, template]}),
            Ty::Float => json!({"anyOf": [{"type": "number"}, template]}),
            Ty::Timestamp => json!({"anyOf": [{"type": "string"}, {"type": "number"}]}),
            Ty::Blob => json!({"type": "string", "contentEncoding": "base64"}),
            Ty::Map(_, value) => json!({"anyOf": [{"type": "object", "additionalProperties": ty_schema(value)}, template]}),
            Ty::Any => json!({}),
            Ty::Doc => json!({"anyOf": [{"type": "object"}, {"type": "string"}]}),
            Ty::StrListMap => json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}),
            Ty::Enum(values) => json!({"anyOf": [{"enum": values}, template]}),
            Ty::List(inner) => json!({"anyOf": [{"type": "array", "items": ty_schema(inner)}, template]}),
            Ty::Struct(fields) => match crate::derive::shape_name(fields) {
                Some(name) => {
                    let key = format!("{service}.{name}");
                    if !self.defs.contains_key(&key) {
                        // Placed first: a structure met again inside itself refers to this entry.
                        self.defs.insert(key.clone(), Value::Null);
                        let def = self.struct_schema(fields, service);
                        self.defs.insert(key.clone(), def);
                    }
                    json!({"$ref": format!("#/$defs/{key}")})
                }
                None => self.struct_schema(fields, service),
            },
        }
    }

    fn struct_schema(&mut self, fields: &[Param], service: &str) -> Value {
        let props: serde_json::Map<String, Value> = fields.iter().map(|p| (p.name.to_string(), self.ty_schema(&p.ty, service))).collect();
        let required: Vec<&str> = fields.iter().filter(|p| p.required).map(|p| p.name).collect();
        json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
    }
}

/// The schema, as pretty JSON with a trailing newline (the committed file's exact form).
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).expect("schema serialises");
    s.push('\n');
    s
}

/// The curated operations with their parameters; any other `service:Action` is accepted.
pub fn schema() -> Value {
    schema_of(&catalog::curated().collect::<Vec<_>>(), true)
}

/// The schema for one service (`lambda`: every operation of its model) or one operation
/// (`lambda:CreateFunction`), as `labrun schema SELECTOR` prints it.
pub fn schema_for(selector: &str) -> Result<Value, String> {
    if selector.contains(':') {
        return match catalog::operation(selector) {
            Some(op) => Ok(schema_of(&[op], false)),
            None => {
                let service = selector.split_once(':').map_or("", |(s, _)| s);
                let names = crate::derive::operation_names(service);
                Err(match catalog::did_you_mean(selector, names.iter().map(String::as_str)) {
                    Some(s) => format!("unknown operation `{selector}`; did you mean `{s}`?"),
                    None if names.is_empty() => format!("unknown operation `{selector}`: labrun knows no service `{service}`"),
                    None => format!("unknown operation `{selector}`; `labrun schema {service}` lists the operations of `{service}`"),
                })
            }
        };
    }
    let ops: Vec<&'static Operation> = match crate::derive::service_operations(selector) {
        Some(ops) => ops,
        None => catalog::curated().filter(|o| o.service() == selector).collect(),
    };
    if ops.is_empty() {
        let mut services: Vec<&str> = labrun_models::services().collect();
        services.push("labrun");
        return Err(match catalog::did_you_mean(selector, services.iter().copied()) {
            Some(s) => format!("unknown service `{selector}`; did you mean `{s}`?"),
            None => format!("unknown service `{selector}`; labrun knows: {}", services.join(", ")),
        });
    }
    Ok(schema_of(&ops, false))
}

/// [`schema_for`] as pretty JSON with a trailing newline.
pub fn schema_text_for(selector: &str) -> Result<String, String> {
    let mut s = serde_json::to_string_pretty(&schema_for(selector)?).expect("schema serialises");
    s.push('\n');
    Ok(s)
}

/// The schema of a lab block whose steps call `ops`; with `open`, also any other operation
/// name (without parameter checks).
fn schema_of(ops: &[&'static Operation], open: bool) -> Value {
    let duration = json!({"anyOf": [{"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$|^[0-9]+$"}, {"type": "integer", "minimum": 0}]});
    let matcher_props: serde_json::Map<String, Value> = Matcher::NAMES
        .iter()
        .map(|m| {
            let s = match *m {
                "matches" => json!({"type": "string"}),
                "length" => json!({"type": "integer", "minimum": 0}),
                "exists" => json!({"type": "boolean"}),
                "any_of" => json!({"type": "array"}),
                "greater_than" => json!({"type": "number"}),
                _ => json!({}),
            };
            (m.to_string(), s)
        })
        .collect();
    let assertions = json!({
        "type": "object",
        "description": "JMESPath expression → expected value, or a one-key matcher mapping",
        "additionalProperties": {"anyOf": [
            {"type": "object", "properties": matcher_props, "minProperties": 1, "maxProperties": 1, "additionalProperties": false},
            {}
        ]}
    });
    let mut generator = Gen::default();
    let per_op: Vec<Value> = ops
        .iter()
        .map(|op| {
            json!({
                "if": {"properties": {"call": {"const": op.name}}, "required": ["call"]},
                "then": {"properties": {"with": generator.struct_schema(op.params, op.service())}}
            })
        })
        .collect();
    let names: Vec<&str> = ops.iter().map(|o| o.name).collect();
    let call = if open {
        json!({"anyOf": [
            {"enum": names},
            {"type": "string", "pattern": "^[a-z0-9-]+:[A-Za-z0-9]+$", "description": "any operation of a service model labrun carries; `labrun schema SERVICE` has their parameters"}
        ], "description": "service:Action, as IAM names it"})
    } else {
        json!({"enum": names, "description": "service:Action, as IAM names it"})
    };
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://labrun.dev/schema/lab-block.json",
        "title": "labrun lab block",
        "description": "The steps of a chapter: the content of a ```labrun fenced block, or the `steps` of lab.yaml.",
        "type": "array",
        "items": {"$ref": "#/$defs/step"},
        "$defs": {
            "step": {
                "type": "object",
                "required": ["id", "call"],
                "additionalProperties": false,
                "properties": {
                    "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
                    "title": {"type": "string"},
                    "call": call,
                    "with": {"type": "object"},
                    "outputs": {"type": "object", "additionalProperties": {"type": "string", "description": "JMESPath over the response"}},
                    "expect": assertions,
                    "until": assertions,
                    "timeout": duration,
                    "interval": duration,
                    "pages": {"enum": crate::model::Pages::NAMES, "description": "all (default): follow every page of a paged read; first: one request"},
                    "wait": {"type": "string", "description": "a waiter of the service model that polls this operation, e.g. InstanceRunning"},
                    "retry": {"type": "object", "additionalProperties": false, "properties": {
                        "attempts": {"type": "integer", "minimum": 1, "maximum": crate::limits::MAX_RETRY_ATTEMPTS},
                        "delay": duration,
                        "on": {"type": "array", "items": {"type": "string"}}
                    }},
                    "cleanup": {"anyOf": [
                        {"enum": ["auto", "restore", "none"]},
                        {"type": "object", "required": ["call"], "properties": {"call": call, "with": {"type": "object"}}, "additionalProperties": false}
                    ]},
                    "when": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
                    "for_each": {"anyOf": [{"type": "array", "maxItems": crate::limits::MAX_FOR_EACH_ITEMS}, {"type": "string"}]},
                    "requires": {"type": "array", "items": {"enum": crate::steps::CAPABILITIES}},
                    "check": {"type": "boolean"},
                    "hint": {"type": "string"}
                },
                "allOf": per_op
            }
        }
    });
    if let Some(defs) = schema["$defs"].as_object_mut() {
        defs.extend(generator.defs);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes that decided the split (module comment): the default schema stays small
    /// enough to commit, and one service's is what an editor can load.
    #[test]
    fn all_services_measured() {
        let size = |v: &Value| serde_json::to_string(v).unwrap().len();
        let default = size(&schema());
        let mut all = 0;
        let mut largest = ("", 0);
        for service in labrun_models::services() {
            let n = size(&schema_for(service).unwrap());
            all += n;
            if n > largest.1 {
                largest = (service, n);
            }
        }
        let pretty: usize = labrun_models::services().map(|s| schema_text_for(s).unwrap().len()).sum();
        eprintln!("default {default} bytes; every service {all} bytes ({pretty} pretty); largest {} {} bytes", largest.0, largest.1);
        assert!(default < 2_000_000, "{default}");
        assert!(all > 10 * default, "{all} vs {default}");
    }

    #[test]
    fn a_service_or_an_operation_has_its_own_schema() {
        let lambda = schema_text_for("lambda").unwrap();
        assert!(lambda.contains("\"lambda:CreateFunction\"") && lambda.contains("\"lambda.Environment\""));
        let one = schema_for("dynamodb:PutItem").unwrap();
        assert_eq!(one["$defs"]["step"]["properties"]["call"]["enum"], json!(["dynamodb:PutItem"]));
        assert!(one["$defs"].get("dynamodb.AttributeValue").is_some());
        assert_eq!(
            schema_for("lambda:CreateFuntion").unwrap_err(),
            "unknown operation `lambda:CreateFuntion`; did you mean `lambda:CreateFunction`?"
        );
        assert_eq!(schema_for("lamda").unwrap_err(), "unknown service `lamda`; did you mean `lambda`?");
        assert!(schema_for("labrun").unwrap().to_string().contains("labrun:CheckSsmReachability"));
    }
}
