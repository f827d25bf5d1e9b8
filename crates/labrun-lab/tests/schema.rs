//! The published JSON Schemas (`docs/lab-schema.json`, `docs/workshop-schema.json`): draft-07
//! as the YAML language server reads them, in sync with the generator, accepting every shipped
//! lab file and rejecting what labrun rejects. YAML is read with labrun's own parser, so YAML
//! 1.1 words such as `no` stay strings here as they do in labrun.

use labrun_lab::schema::{self, DRAFT};
use labrun_lab::{SourceFile, page, yaml};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The schema, with its root replaced by one of its definitions (an entry point). A lone
/// `allOf` rather than a `$ref` at the root: draft-07 ignores the siblings of a `$ref`.
fn entry_point(schema: &Value, definition: &str) -> Value {
    let mut s = schema.clone();
    let root = s.as_object_mut().unwrap();
    root.remove("anyOf");
    root.insert("allOf".into(), json!([{"$ref": format!("#/definitions/{definition}")}]));
    s
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft7::new(schema).unwrap_or_else(|e| panic!("not a valid draft-07 schema: {e}"))
}

/// The validation errors, one line each (empty: valid).
fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

fn yaml_json(text: &str) -> Value {
    yaml::parse(text, 0).unwrap_or_else(|e| panic!("{}: {text}", e.message)).to_json()
}

struct Validators {
    lab_yaml: jsonschema::Validator,
    lab_block: jsonschema::Validator,
    chapter_settings: jsonschema::Validator,
    workshop: jsonschema::Validator,
}

impl Validators {
    fn new() -> Self {
        let lab = schema::schema();
        Validators {
            lab_yaml: validator(&lab),
            lab_block: validator(&entry_point(&lab, "lab-block")),
            chapter_settings: validator(&entry_point(&lab, "chapter-settings")),
            workshop: validator(&schema::workshop_schema()),
        }
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn the_schemas_are_draft_07_for_the_yaml_language_server() {
    // Keywords of 2019-09 and 2020-12 the YAML language server does not know.
    const LATER: &[&str] = &[
        "$defs",
        "$anchor",
        "$dynamicRef",
        "$dynamicAnchor",
        "$recursiveRef",
        "$recursiveAnchor",
        "$vocabulary",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
        "unevaluatedItems",
        "prefixItems",
        "minContains",
        "maxContains",
        "contentSchema",
    ];
    /// Walks the schema positions of `v` (not the names under `properties` or the values of
    /// `enum` and `const`).
    fn walk(v: &Value, at: &str, problems: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for k in m.keys().filter(|k| LATER.contains(&k.as_str())) {
                    problems.push(format!("{at}: `{k}` is not draft-07"));
                }
                if m.contains_key("$ref") && m.len() > 1 {
                    problems.push(format!("{at}: draft-07 ignores the siblings of `$ref`"));
                }
                if let Some(Value::String(r)) = m.get("$ref")
                    && !r.starts_with("#/definitions/")
                {
                    problems.push(format!("{at}: `$ref` {r} points outside `definitions`"));
                }
                for (k, child) in m {
                    match k.as_str() {
                        "enum" | "const" | "default" | "examples" | "required" => {}
                        "properties" | "definitions" | "patternProperties" => {
                            for (name, s) in child.as_object().into_iter().flatten() {
                                walk(s, &format!("{at}/{k}/{name}"), problems);
                            }
                        }
                        _ => walk(child, &format!("{at}/{k}"), problems),
                    }
                }
            }
            Value::Array(items) => items.iter().enumerate().for_each(|(i, s)| walk(s, &format!("{at}/{i}"), problems)),
            _ => {}
        }
    }
    for (name, s) in [("lab", schema::schema()), ("lambda", schema::schema_for("lambda").unwrap()), ("workshop", schema::workshop_schema())]
    {
        assert_eq!(s["$schema"], DRAFT, "{name}");
        assert_eq!(DRAFT, "http://json-schema.org/draft-07/schema#");
        let mut problems = Vec::new();
        walk(&s, "#", &mut problems);
        assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
        // Valid against the draft-07 meta-schema, every `$ref` resolves.
        jsonschema::draft7::meta::validate(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        validator(&s);
    }
}

#[test]
fn workshop_schema_file_is_in_sync() {
    let file = repo().join("docs/workshop-schema.json");
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    let current = schema::workshop_schema_text();
    if committed != current {
        if std::env::var_os("LABRUN_UPDATE_SCHEMA").is_some() {
            std::fs::write(&file, &current).unwrap();
        } else {
            panic!("docs/workshop-schema.json is out of date: run `LABRUN_UPDATE_SCHEMA=1 cargo test -p labrun-lab schema` and commit it");
        }
    }
    assert_eq!(schema::schema_for("workshop").unwrap(), schema::workshop_schema());
}

/// Every `lab.yaml`, `workshop.yaml`, ```` ```labrun ```` block and `labrun:` front-matter
/// section shipped in labs/ and examples/ validates against the published schemas.
#[test]
fn every_shipped_lab_file_validates_against_the_schemas() {
    let v = Validators::new();
    let mut files = Vec::new();
    for dir in ["labs", "examples"] {
        files_under(&repo().join(dir), &mut files);
    }
    let (mut blocks, mut workshops, mut lab_yamls, mut settings) = (0, 0, 0, 0);
    let mut problems = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy();
        let text = std::fs::read_to_string(path).unwrap();
        let shown = path.strip_prefix(repo()).unwrap_or(path).display().to_string();
        match name.as_ref() {
            "workshop.yaml" => {
                workshops += 1;
                problems.extend(errors(&v.workshop, &yaml_json(&text)).into_iter().map(|e| format!("{shown}: {e}")));
            }
            "lab.yaml" => {
                lab_yamls += 1;
                problems.extend(errors(&v.lab_yaml, &yaml_json(&text)).into_iter().map(|e| format!("{shown}: {e}")));
            }
            n if n.ends_with(".md") => {
                let source = SourceFile::new(path, text.clone());
                let mut diags = Vec::new();
                let fm = page::front_matter(&source, &mut diags);
                if let Some(node) = &fm.labrun {
                    settings += 1;
                    problems
                        .extend(errors(&v.chapter_settings, &node.to_json()).into_iter().map(|e| format!("{shown} (front matter): {e}")));
                }
                for block in page::lab_blocks(&text, fm.body_start) {
                    blocks += 1;
                    let node = block.parse().unwrap_or_else(|e| panic!("{shown}: {}", e.message));
                    let line = source.line_col(block.span.start).0;
                    problems.extend(errors(&v.lab_block, &node.to_json()).into_iter().map(|e| format!("{shown}:{line}: {e}")));
                }
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "shipped lab files the schema rejects:\n{}", problems.join("\n"));
    // What there is today (labs/ and examples/ hold no lab.yaml; the forms are tested below).
    assert!(blocks >= 20 && workshops == 2 && settings >= 10, "{blocks} blocks, {workshops} workshop.yaml, {settings} settings");
    eprintln!("{blocks} labrun blocks, {workshops} workshop.yaml, {lab_yamls} lab.yaml, {settings} front-matter sections validated");
}

fn load(files: &[(&str, &str)]) -> labrun_lab::Loaded {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    labrun_lab::load(dir.path()).unwrap()
}

fn codes(loaded: &labrun_lab::Loaded) -> Vec<&'static str> {
    loaded.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.code).collect()
}

const STEPS: &str = "- id: lab-vpc\n  call: ec2:DescribeVpcs\n  with: { Filters: [ { Name: \"tag:Name\", Values: [ Lab VPC ] } ] }\n  outputs: { id: \"Vpcs[0].VpcId\" }\n- id: dns-on\n  call: ec2:DescribeVpcAttribute\n  with: { VpcId: \"{{ steps['lab-vpc'].id }}\", Attribute: enableDnsHostnames }\n  expect: { \"EnableDnsHostnames.Value\": true }\n  timeout: 2m\n";

/// Both forms of lab.yaml, and a block of one step: labrun loads them without errors and the
/// schema accepts them.
#[test]
fn lab_yaml_forms_validate() {
    let v = Validators::new();
    let mapping = format!(
        "title: Enable DNS\ntitle_vi: Bật DNS\nweight: 2\nrequires: [\"1\", 1.1]\nteardown: false\nvars: {{ cidr: 10.0.0.0/16 }}\nsteps:\n{}",
        STEPS.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    for text in [STEPS.to_string(), mapping.clone(), String::new()] {
        let loaded =
            load(&[("1-a/_index.md", "---\ntitle: A\n---\n"), ("1-a/1.1-b/_index.md", "---\ntitle: B\n---\n"), ("2-c/lab.yaml", &text)]);
        assert_eq!(codes(&loaded), Vec::<&str>::new(), "{text}");
        assert_eq!(errors(&v.lab_yaml, &yaml_json(&text)), Vec::<String>::new(), "{text}");
    }
    let one = "id: who\ncall: sts:GetCallerIdentity\n";
    assert!(codes(&load(&[("1-a/_index.md", &format!("---\ntitle: A\n---\n```labrun\n{one}```\n"))])).is_empty());
    assert_eq!(errors(&v.lab_block, &yaml_json(one)), Vec::<String>::new());
}

/// What labrun rejects, the schema rejects: a misspelled field at every level, a value of the
/// wrong type (YAML 1.1's `no` is a string, not false), a bad value of a modelled enum.
#[test]
fn misspelled_fields_are_rejected_by_labrun_and_the_schema() {
    let v = Validators::new();
    let page = |steps: &str| format!("---\ntitle: A\n---\n```labrun\n{steps}```\n");
    let step_cases = [
        ("- id: a\n  calll: ec2:DescribeVpcs\n", "labrun::unknown-field", "calll"),
        ("- id: a\n  call: ec2:DescribeVpcs\n  check: no\n", "labrun::wrong-type", "check"),
        ("- id: a\n  call: ec2:DescribeVpcs\n  with: { Filter: [] }\n", "labrun::unknown-parameter", "Filter"),
        ("- id: a\n  call: ec2:DescribeVpcs\n  with: { VpcIds: vpc-1 }\n", "labrun::wrong-type", "VpcIds"),
        (
            "- id: a\n  call: ec2:DescribeVpcAttribute\n  with: { VpcId: vpc-1, Attribute: enableDnsHostname }\n",
            "labrun::bad-value",
            "enableDnsHostname",
        ),
        ("- id: a\n  call: ec2:DescribeVpcs\n  retry: { attempt: 3 }\n", "labrun::unknown-field", "attempt"),
    ];
    for (steps, code, word) in step_cases {
        let loaded = load(&[("1-a/_index.md", &page(steps))]);
        assert!(codes(&loaded).contains(&code), "labrun accepts {steps}: {:?}", codes(&loaded));
        let errs = errors(&v.lab_block, &yaml_json(steps));
        assert!(errs.iter().any(|e| e.contains(word)), "the schema accepts {steps}, or does not name `{word}`: {errs:?}");
    }
    // lab.yaml, a page's `labrun:` section and workshop.yaml.
    let lab_yaml = "titel: A\nsteps: []\n";
    assert!(codes(&load(&[("1-a/lab.yaml", lab_yaml)])).contains(&"labrun::unknown-field"));
    assert!(!errors(&v.lab_yaml, &yaml_json(lab_yaml)).is_empty());
    let settings = "require: [\"1\"]\n";
    let fm = format!("---\ntitle: A\nlabrun:\n  {}---\n", settings);
    assert!(codes(&load(&[("1-a/_index.md", &fm)])).contains(&"labrun::unknown-field"));
    assert!(!errors(&v.chapter_settings, &yaml_json(settings)).is_empty());
    for workshop in ["workshop: x\nregoin: us-east-1\n", "accounts: [\"12345\"]\n", "vars: [a]\n"] {
        let loaded = load(&[("workshop.yaml", workshop), ("1-a/_index.md", "---\ntitle: A\n---\n")]);
        assert!(!codes(&loaded).is_empty(), "labrun accepts {workshop}");
        assert!(!errors(&v.workshop, &yaml_json(workshop)).is_empty(), "the schema accepts {workshop}");
    }
    let good = "workshop: x\ntitle: X\nregion: us-east-1\naccounts: [\"123456789012\", 123456789012]\nvars: { a: 1 }\n";
    assert!(codes(&load(&[("workshop.yaml", good), ("1-a/_index.md", "---\ntitle: A\n---\n")])).is_empty());
    assert_eq!(errors(&v.workshop, &yaml_json(good)), Vec::<String>::new());
}

/// The schemas name the fields the loader knows, no more and no fewer: the loader's own list,
/// read from the help it gives for a field it does not know.
#[test]
fn schema_fields_match_the_loader() {
    let lab = schema::schema();
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v["properties"].as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let listed = |help: &str| -> Vec<String> {
        let (_, list) = help.split_once(" are: ").unwrap_or_else(|| panic!("no field list in {help:?}"));
        let mut k: Vec<String> = list.split(", ").map(str::to_string).collect();
        k.sort();
        k
    };
    let help_for = |files: &[(&str, &str)]| -> String {
        let loaded = load(files);
        let d = loaded.diagnostics.iter().find(|d| d.code == "labrun::unknown-field").expect("an unknown field");
        d.help.clone().unwrap()
    };
    let mut step_fields: Vec<String> = labrun_lab::steps::STEP_FIELDS.iter().map(|s| s.to_string()).collect();
    step_fields.sort();
    assert_eq!(keys(&lab["definitions"]["step"]), step_fields);
    assert_eq!(keys(&lab["definitions"]["lab-file"]), listed(&help_for(&[("1-a/lab.yaml", "zzzzzz: 1\n")])));
    assert_eq!(
        keys(&lab["definitions"]["chapter-settings"]),
        listed(&help_for(&[("1-a/_index.md", "---\ntitle: A\nlabrun:\n  zzzzzz: 1\n---\n")]))
    );
    assert_eq!(
        keys(&schema::workshop_schema()),
        listed(&help_for(&[("workshop.yaml", "zzzzzz: 1\n"), ("1-a/_index.md", "---\ntitle: A\n---\n")]))
    );
}
