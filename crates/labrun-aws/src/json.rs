//! JSON in the API's own shape (PascalCase, as the AWS CLI prints it) to and from SDK types.
//!
//! The SDK types have no serde support, so each one used is listed once with its fields, via
//! the `to_json!` / `from_json!` macros; primitives, options, lists and enums are generic.

use crate::CallError;
use labrun_exec::ErrorKind;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

pub trait ToJson {
    fn to_json(&self) -> Value;
}

impl ToJson for str {
    fn to_json(&self) -> Value {
        Value::String(self.to_string())
    }
}
impl ToJson for String {
    fn to_json(&self) -> Value {
        Value::String(self.clone())
    }
}
impl ToJson for bool {
    fn to_json(&self) -> Value {
        Value::Bool(*self)
    }
}
impl ToJson for i32 {
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
}
impl ToJson for i64 {
    fn to_json(&self) -> Value {
        Value::from(*self)
    }
}
impl ToJson for aws_smithy_types::DateTime {
    fn to_json(&self) -> Value {
        self.fmt(aws_smithy_types::date_time::Format::DateTime).map(Value::String).unwrap_or(Value::Null)
    }
}
impl<T: ToJson + ?Sized> ToJson for &T {
    fn to_json(&self) -> Value {
        (**self).to_json()
    }
}
impl<T: ToJson> ToJson for Option<T> {
    fn to_json(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToJson::to_json)
    }
}
impl<T: ToJson> ToJson for [T] {
    fn to_json(&self) -> Value {
        Value::Array(self.iter().map(ToJson::to_json).collect())
    }
}
impl<T: ToJson> ToJson for Vec<T> {
    fn to_json(&self) -> Value {
        self.as_slice().to_json()
    }
}
impl<T: ToJson> ToJson for HashMap<String, T> {
    fn to_json(&self) -> Value {
        let mut keys: Vec<&String> = self.keys().collect();
        keys.sort();
        Value::Object(keys.into_iter().map(|k| (k.clone(), self[k].to_json())).collect())
    }
}

/// `to_json!(Type { "ApiName" => accessor, ... })`: absent (None) fields are left out.
macro_rules! to_json {
    ($($ty:ty { $($key:literal => $acc:ident),* $(,)? })*) => {$(
        impl $crate::json::ToJson for $ty {
            fn to_json(&self) -> serde_json::Value {
                #[allow(unused_mut)]
                let mut m = serde_json::Map::new();
                $(
                    let v = $crate::json::ToJson::to_json(&self.$acc());
                    if !v.is_null() {
                        m.insert($key.to_string(), v);
                    }
                )*
                serde_json::Value::Object(m)
            }
        }
    )*};
}
pub(crate) use to_json;

/// SDK enums print as their wire value.
macro_rules! enum_json {
    ($($ty:ty),* $(,)?) => {$(
        impl $crate::json::ToJson for $ty {
            fn to_json(&self) -> serde_json::Value {
                serde_json::Value::String(self.as_str().to_string())
            }
        }
        impl $crate::json::FromJson for $ty {
            fn from_json(v: &serde_json::Value, what: &str) -> Result<Self, String> {
                let s = String::from_json(v, what)?;
                Ok(<$ty>::from(s.as_str()))
            }
        }
    )*};
}
pub(crate) use enum_json;

pub trait FromJson: Sized {
    fn from_json(v: &Value, what: &str) -> Result<Self, String>;
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl FromJson for String {
    fn from_json(v: &Value, what: &str) -> Result<Self, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            // Policy and document parameters may be written as mappings: send them as JSON text.
            Value::Object(_) | Value::Array(_) => Ok(serde_json::to_string(v).unwrap_or_default()),
            Value::Null => Err(format!("{what} must be a string, found null")),
        }
    }
}
impl FromJson for bool {
    fn from_json(v: &Value, what: &str) -> Result<Self, String> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(format!("{what} must be true or false, found {}", kind(other))),
        }
    }
}
impl FromJson for i32 {
    fn from_json(v: &Value, what: &str) -> Result<Self, String> {
        match v {
            Value::Number(n) => n.as_i64().and_then(|i| i32::try_from(i).ok()).ok_or_else(|| format!("{what} must be a whole number")),
            Value::String(s) => s.parse().map_err(|_| format!("{what} must be a whole number, found \"{s}\"")),
            other => Err(format!("{what} must be a whole number, found {}", kind(other))),
        }
    }
}
impl FromJson for i64 {
    fn from_json(v: &Value, what: &str) -> Result<Self, String> {
        match v {
            Value::Number(n) => n.as_i64().ok_or_else(|| format!("{what} must be a whole number")),
            Value::String(s) => s.parse().map_err(|_| format!("{what} must be a whole number, found \"{s}\"")),
            other => Err(format!("{what} must be a whole number, found {}", kind(other))),
        }
    }
}
impl FromJson for f64 {
    fn from_json(v: &Value, what: &str) -> Result<Self, String> {
        match v {
            Value::Number(n) => n.as_f64().ok_or_else(|| format!("{what} must be a number")),
            Value::String(s) => s.parse().map_err(|_| format!("{what} must be a number, found \"{s}\"")),
            other => Err(format!("{what} must be a number, found {}", kind(other))),
        }
    }
}
impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(v: &Value, what: &str) -> Result<Self, String> {
        match v {
            Value::Array(items) => items.iter().enumerate().map(|(i, x)| T::from_json(x, &format!("{what}[{i}]"))).collect(),
            // A single value where a list is expected is a one-item list (as the CLI allows).
            Value::String(_) | Value::Object(_) => Ok(vec![T::from_json(v, what)?]),
            other => Err(format!("{what} must be a list, found {}", kind(other))),
        }
    }
}
impl FromJson for HashMap<String, Vec<String>> {
    fn from_json(v: &Value, what: &str) -> Result<Self, String> {
        match v {
            Value::Object(m) => m.iter().map(|(k, x)| Ok((k.clone(), Vec::<String>::from_json(x, &format!("{what}.{k}"))?))).collect(),
            other => Err(format!("{what} must be a mapping, found {}", kind(other))),
        }
    }
}

/// Builders return either the value or `Result<value, BuildError>`; this accepts both.
pub trait Built<T> {
    fn built(self) -> Result<T, String>;
}
impl<T> Built<T> for T {
    fn built(self) -> Result<T, String> {
        Ok(self)
    }
}
impl<T> Built<T> for Result<T, aws_smithy_types::error::operation::BuildError> {
    fn built(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// `from_json!(Type { "ApiName" => setter, ... })` for input structures.
macro_rules! from_json {
    ($($ty:ty { $($key:literal => $set:ident),* $(,)? })*) => {$(
        impl $crate::json::FromJson for $ty {
            fn from_json(v: &serde_json::Value, what: &str) -> Result<Self, String> {
                let serde_json::Value::Object(m) = v else {
                    return Err(format!("{what} must be a mapping"));
                };
                const KNOWN: &[&str] = &[$($key),*];
                if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
                    return Err(format!("{what} has no field `{k}`"));
                }
                let b = <$ty>::builder();
                $(
                    let b = b.$set(match m.get($key) {
                        Some(x) if !x.is_null() => Some($crate::json::FromJson::from_json(x, &format!("{what}.{}", $key))?),
                        _ => None,
                    });
                )*
                $crate::json::Built::<$ty>::built(b.build()).map_err(|e| format!("{what}: {e}"))
            }
        }
    )*};
}
pub(crate) use from_json;

/// Call parameters: each binding takes what it knows; what it did not take is reported.
pub struct Params {
    map: Map<String, Value>,
    taken: HashSet<String>,
    op: &'static str,
}

impl Params {
    pub fn new(op: &'static str, v: &Value) -> Result<Self, CallError> {
        match v {
            Value::Object(m) => Ok(Params { map: m.clone(), taken: HashSet::new(), op }),
            Value::Null => Ok(Params { map: Map::new(), taken: HashSet::new(), op }),
            _ => Err(CallError::new(ErrorKind::Client, "InvalidParameter", format!("{op}: parameters must be a mapping"))),
        }
    }

    /// Takes an optional parameter, converting it to the SDK type.
    pub fn get<T: FromJson>(&mut self, name: &str) -> Result<Option<T>, CallError> {
        self.taken.insert(name.to_string());
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => T::from_json(v, name)
                .map(Some)
                .map_err(|e| CallError::new(ErrorKind::Client, "InvalidParameterValue", format!("{}: {e}", self.op))),
        }
    }

    /// Names the binding read, for the catalog/binding consistency test.
    pub fn taken(&self) -> &HashSet<String> {
        &self.taken
    }

    /// Fails if the caller passed something the binding never read.
    pub fn finish(&self) -> Result<(), CallError> {
        match self.map.keys().find(|k| !self.taken.contains(*k)) {
            Some(k) => Err(CallError::new(ErrorKind::Client, "UnknownParameter", format!("{} does not take parameter `{k}`", self.op))),
            None => Ok(()),
        }
    }
}

/// IAM returns policy documents URL-encoded; the CLI shows them decoded, as JSON.
pub fn policy_document(raw: Option<&str>) -> Value {
    let Some(raw) = raw else { return Value::Null };
    let decoded = percent_decode(raw);
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
