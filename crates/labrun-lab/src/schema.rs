//! JSON Schemas of labrun's files, generated from the catalog so editors can complete operation
//! names and their parameters, and check `lab.yaml` and `workshop.yaml` as they are typed.
//!
//! The schemas are JSON Schema draft-07 ([`DRAFT`]): the newest draft the YAML language server
//! (VS Code's YAML extension, and the editors that embed it) validates in full. So structures
//! live under `definitions` (not 2019-09's `$defs`), no keyword of later drafts is used, and a
//! `$ref` stands alone (draft-07 ignores its siblings).
//!
//! Every operation of every embedded service model is a catalog operation; a schema of all of
//! them measured 2.6 MB compact, 7.2 MB pretty (EC2 alone 0.77 MB; `all_services_measured`
//! below), too much to commit or for an editor to load for every file. So [`schema`] (`labrun schema`, the committed
//! `docs/lab-schema.json`) has the curated operations with their full parameters and accepts
//! any other `service:Action` name, and [`schema_for`] (`labrun schema SERVICE`, `labrun schema
//! service:Action`) has every operation of one service, or one operation. Structures of the
//! models are written once each under `definitions` (`ec2.Filter`) and referred to.
//!
//! Entry points: the root of the lab schema is `lab.yaml` (a list of steps, or a mapping of
//! settings and steps); `#/definitions/lab-block` is the content of a ```` ```labrun ```` block,
//! `#/definitions/chapter-settings` the `labrun:` section of a page's front matter.
//! [`workshop_schema`] (`docs/workshop-schema.json`, `labrun schema workshop`) is `workshop.yaml`.

use crate::catalog::{self, Operation, Param, Ty};
use crate::model::Matcher;
use serde_json::{Value, json};

/// Builds parameter schemas, collecting the models' structures under `definitions`.
#[derive(Default)]
struct Gen {
    defs: serde_json::Map<String, Value>,
}

impl Gen {
    fn ty_schema(&mut self, ty: &Ty, service: &str) -> Value {
        // Any string may be a template that renders to the right type at run time (`{{ … }}`,
        // `{% … %}`: what the validator skips, `steps.rs`).
        let template = json!({"type": "string", "pattern": "\\{[{%]"});
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
            Ty::StrListMap => {
                json!({"anyOf": [{"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}, template]})
            }
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
                    json!({"anyOf": [{"$ref": format!("#/definitions/{key}")}, template]})
                }
                None => json!({"anyOf": [self.struct_schema(fields, service), template]}),
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
/// (`lambda:CreateFunction`), as `labrun schema SELECTOR` prints it; `workshop` is the
/// schema of `workshop.yaml` ([`workshop_schema`]).
pub fn schema_for(selector: &str) -> Result<Value, String> {
    if selector == "workshop" {
        return Ok(workshop_schema());
    }
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

/// The JSON Schema draft the schemas are written in: draft-07, the newest draft the YAML
/// language server (and so VS Code's YAML extension) validates fully; `definitions`, not `$defs`.
pub const DRAFT: &str = "http://json-schema.org/draft-07/schema#";

/// The schema of `lab.yaml` (its root) and, under `definitions`, of the other entry points:
/// `lab-block` (the content of a ```` ```labrun ```` block: a list of steps, or one step),
/// `step`, and `chapter-settings` (the `labrun:` section of a page's front matter). The steps
/// call `ops`; with `open`, any other `service:Action` name is accepted too (without
/// parameter checks).
fn schema_of(ops: &[&'static Operation], open: bool) -> Value {
    let duration = json!({"anyOf": [
        {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$|^[0-9]+$"},
        {"type": "integer", "minimum": 0}
    ], "description": "a duration: `500ms`, `30s`, `10m`, `1h30m`, or whole seconds"});
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
    let chapter_number = json!({
        "type": ["string", "number"],
        "description": "a chapter's number, e.g. \"2\" or \"3.1\""
    });
    let requires = json!({"type": "array", "items": chapter_number, "description": "chapters that must be in place first, by number"});
    let vars = json!({"type": "object", "description": "variables for templates (`{{ vars.name }}`), added to the workshop's"});
    let teardown = json!({"type": "boolean", "description": "a clean-up chapter: it runs only when addressed by itself"});
    let step = json!({
        "type": "object",
        "required": ["id", "call"],
        "additionalProperties": false,
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "description": "unique in the chapter; `steps.<id>` in templates"},
            "title": {"type": "string"},
            "call": {"$ref": "#/definitions/call"},
            "with": {"type": "object", "description": "the operation's parameters, named as in the API reference"},
            "outputs": {"type": "object", "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}, "additionalProperties": {"type": "string", "description": "JMESPath over the response"}},
            "expect": {"$ref": "#/definitions/assertions"},
            "until": {"$ref": "#/definitions/assertions"},
            "timeout": {"$ref": "#/definitions/duration"},
            "interval": {"$ref": "#/definitions/duration"},
            "pages": {"enum": crate::model::Pages::NAMES, "description": "all (default): follow every page of a paged read; first: one request"},
            "wait": {"type": "string", "description": "a waiter of the service model that polls this operation, e.g. InstanceRunning"},
            "retry": {"type": "object", "additionalProperties": false, "properties": {
                "attempts": {"type": "integer", "minimum": 1, "maximum": crate::limits::MAX_RETRY_ATTEMPTS},
                "delay": {"$ref": "#/definitions/duration"},
                "on": {"type": "array", "items": {"type": "string"}}
            }},
            "cleanup": {"anyOf": [
                {"enum": ["auto", "restore", "none"]},
                {"type": "object", "required": ["call"], "properties": {"call": {"$ref": "#/definitions/call"}, "with": {"type": "object"}}, "additionalProperties": false}
            ]},
            "when": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
            "for_each": {"anyOf": [{"type": "array", "maxItems": crate::limits::MAX_FOR_EACH_ITEMS}, {"type": "string"}]},
            "requires": {"type": "array", "items": {"enum": crate::steps::CAPABILITIES}},
            "check": {"type": "boolean"},
            "hint": {"type": "string"}
        },
        "allOf": per_op
    });
    let mut schema = json!({
        "$schema": DRAFT,
        "$id": "https://labrun.dev/schema/lab.json",
        "title": "labrun lab.yaml",
        "description": "A chapter's lab.yaml: a list of steps, or a mapping with title, title_vi, weight, requires, vars, teardown and steps. Other entry points: #/definitions/lab-block (the content of a ```labrun block in a page), #/definitions/step, #/definitions/chapter-settings (the `labrun:` section of a page's front matter).",
        "anyOf": [
            {"$ref": "#/definitions/steps"},
            {"$ref": "#/definitions/lab-file"},
            {"type": "null"}
        ],
        "definitions": {
            "lab-file": {
                "type": "object",
                "description": "lab.yaml as a mapping: the chapter's settings and its steps",
                "additionalProperties": false,
                "properties": {
                    "title": {"type": "string", "description": "the chapter's English title"},
                    "title_vi": {"type": "string", "description": "the chapter's Vietnamese title"},
                    "weight": {"type": "integer", "description": "order among sibling chapters (smaller first)"},
                    "requires": requires,
                    "vars": vars,
                    "teardown": teardown,
                    "steps": {"$ref": "#/definitions/lab-block"}
                }
            },
            "chapter-settings": {
                "type": "object",
                "description": "the `labrun:` section of a page's front matter",
                "additionalProperties": false,
                "properties": {"requires": requires, "vars": vars, "teardown": teardown}
            },
            "lab-block": {
                "description": "the content of a ```labrun block: a list of steps, or one step",
                "anyOf": [
                    {"$ref": "#/definitions/steps"},
                    {"$ref": "#/definitions/step"},
                    {"type": "null"}
                ]
            },
            "steps": {"type": "array", "items": {"$ref": "#/definitions/step"}},
            "call": call,
            "duration": duration,
            "assertions": assertions,
            "step": step
        }
    });
    if let Some(defs) = schema["definitions"].as_object_mut() {
        defs.extend(generator.defs);
    }
    schema
}

/// The schema of `workshop.yaml`.
pub fn workshop_schema() -> Value {
    json!({
        "$schema": DRAFT,
        "$id": "https://labrun.dev/schema/workshop.json",
        "title": "labrun workshop.yaml",
        "description": "The settings of a workshop: workshop.yaml at its root.",
        "type": ["object", "null"],
        "additionalProperties": false,
        "properties": {
            "workshop": {"type": "string", "description": "the workshop's id, used in the `labrun:workshop` tag and the ledger (default: the folder's name)"},
            "title": {"type": "string"},
            "region": {"type": "string", "description": "the region when neither --region nor AWS_REGION says otherwise (default: ap-southeast-1)"},
            "vars": {"type": "object", "description": "variables for templates (`{{ vars.name }}`) in every chapter"},
            "accounts": {
                "type": "array",
                "description": "the AWS accounts `labrun --target aws` may change (others need --account)",
                "items": {"anyOf": [
                    {"type": "string", "pattern": "^[0-9]{12}$"},
                    {"type": "integer", "minimum": 0, "maximum": 999_999_999_999u64}
                ], "description": "a 12-digit account id, quoted"}
            }
        }
    })
}

/// [`workshop_schema`] as pretty JSON with a trailing newline (`docs/workshop-schema.json`).
pub fn workshop_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&workshop_schema()).expect("schema serialises");
    s.push('\n');
    s
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
        assert_eq!(one["definitions"]["call"]["enum"], json!(["dynamodb:PutItem"]));
        assert!(one["definitions"].get("dynamodb.AttributeValue").is_some());
        assert_eq!(
            schema_for("lambda:CreateFuntion").unwrap_err(),
            "unknown operation `lambda:CreateFuntion`; did you mean `lambda:CreateFunction`?"
        );
        assert_eq!(schema_for("lamda").unwrap_err(), "unknown service `lamda`; did you mean `lambda`?");
        assert!(schema_for("labrun").unwrap().to_string().contains("labrun:CheckSsmReachability"));
        assert_eq!(schema_for("workshop").unwrap(), workshop_schema());
    }

    /// Every schema labrun writes is draft-07, as the YAML language server reads it.
    #[test]
    fn schemas_are_draft_07() {
        for s in [schema(), schema_for("lambda").unwrap(), workshop_schema()] {
            assert_eq!(s["$schema"], DRAFT);
            assert!(s.get("$defs").is_none());
        }
    }
}
