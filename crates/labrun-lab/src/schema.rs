//! JSON Schema of a lab block (a list of steps), generated from the catalog so editors can
//! complete operation names and their parameters.

use crate::catalog::{OPERATIONS, Param, Ty};
use crate::model::Matcher;
use serde_json::{Value, json};

fn ty_schema(ty: &Ty) -> Value {
    // Any string may be a template that renders to the right type at run time.
    let template = json!({"type": "string", "pattern": "\\{\\{"});
    match ty {
        Ty::Str => json!({"type": "string"}),
        Ty::Bool => json!({"anyOf": [{"type": "boolean"}, template]}),
        Ty::Int => json!({"anyOf": [{"type": "integer"}, template]}),
        Ty::Doc => json!({"anyOf": [{"type": "object"}, {"type": "string"}]}),
        Ty::StrListMap => json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}),
        Ty::Enum(values) => json!({"anyOf": [{"enum": values}, template]}),
        Ty::List(inner) => json!({"anyOf": [{"type": "array", "items": ty_schema(inner)}, template]}),
        Ty::Struct(fields) => struct_schema(fields),
    }
}

fn struct_schema(fields: &[Param]) -> Value {
    let props: serde_json::Map<String, Value> = fields.iter().map(|p| (p.name.to_string(), ty_schema(&p.ty))).collect();
    let required: Vec<&str> = fields.iter().filter(|p| p.required).map(|p| p.name).collect();
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

/// The schema, as pretty JSON with a trailing newline (the committed file's exact form).
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&schema()).expect("schema serialises");
    s.push('\n');
    s
}

pub fn schema() -> Value {
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
    let per_op: Vec<Value> = OPERATIONS
        .iter()
        .map(|op| {
            json!({
                "if": {"properties": {"call": {"const": op.name}}, "required": ["call"]},
                "then": {"properties": {"with": struct_schema(op.params)}}
            })
        })
        .collect();
    let names: Vec<&str> = OPERATIONS.iter().map(|o| o.name).collect();
    json!({
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
                    "call": {"enum": names, "description": "service:Action, as IAM names it"},
                    "with": {"type": "object"},
                    "outputs": {"type": "object", "additionalProperties": {"type": "string", "description": "JMESPath over the response"}},
                    "expect": assertions,
                    "until": assertions,
                    "timeout": duration,
                    "interval": duration,
                    "retry": {"type": "object", "additionalProperties": false, "properties": {
                        "attempts": {"type": "integer", "minimum": 1, "maximum": crate::limits::MAX_RETRY_ATTEMPTS},
                        "delay": duration,
                        "on": {"type": "array", "items": {"type": "string"}}
                    }},
                    "cleanup": {"anyOf": [
                        {"enum": ["auto", "restore", "none"]},
                        {"type": "object", "required": ["call"], "properties": {"call": {"enum": names}, "with": {"type": "object"}}, "additionalProperties": false}
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
    })
}
