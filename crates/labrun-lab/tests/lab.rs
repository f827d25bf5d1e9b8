//! Lab loading and validation: every diagnostic has an invalid fixture and a snapshot of its
//! rendered message; valid fixtures cover the Hugo and YAML forms; every chapter of the
//! project's own workshop must validate.

use labrun_lab::diag::render_plain;
use std::path::Path;

/// Writes a small workshop into a temporary directory.
fn workshop(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// Loads the workshop and renders its diagnostics with paths made relative to it.
fn diagnose(files: &[(&str, &str)]) -> (String, usize) {
    let dir = workshop(files);
    let loaded = labrun_lab::load(dir.path()).unwrap();
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let root = format!("{}/", dir.path().display());
    (render_plain(&loaded.diagnostics).replace(&root, ""), errors)
}

fn page(steps: &str) -> String {
    format!("---\ntitle: \"Chapter\"\nweight: 1\n---\nSome prose.\n\n```labrun\n{steps}```\n")
}

const VPC: &str = "- id: lab-vpc\n  call: ec2:DescribeVpcs\n  with: { Filters: [ { Name: \"tag:Name\", Values: [ Lab VPC ] } ] }\n  outputs: { id: \"Vpcs[0].VpcId\" }\n";

macro_rules! invalid {
    ($name:ident, $files:expr, $errors:expr, $needle:expr) => {
        #[test]
        fn $name() {
            let files: Vec<(&str, String)> = $files;
            let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
            let (text, errors) = diagnose(&refs);
            assert_eq!(errors, $errors, "{text}");
            assert!(text.contains($needle), "expected `{}` in:\n{text}", $needle);
            insta::assert_snapshot!(stringify!($name), text);
        }
    };
}

invalid!(yaml_syntax_error, vec![("1-a/_index.md", page("- id: a\n  call: [ec2:DescribeVpcs\n"))], 1, "YAML syntax error");
invalid!(duplicate_key, vec![("1-a/_index.md", page("- id: a\n  call: ec2:DescribeVpcs\n  id: b\n"))], 1, "duplicate key `id`");
invalid!(unknown_field, vec![("1-a/_index.md", page("- id: a\n  calll: ec2:DescribeVpcs\n"))], 2, "did you mean `call`?");
invalid!(
    wrong_types,
    vec![(
        "1-a/_index.md",
        page("- id: a\n  call: ec2:DescribeVpcs\n  check: \"yes\"\n  with: { VpcIds: vpc-1, Filters: [ { Name: 3 } ] }\n")
    )],
    3,
    "`check` must be true or false"
);
invalid!(unknown_operation, vec![("1-a/_index.md", page("- id: a\n  call: ec2:CreateVcp\n"))], 1, "did you mean `ec2:CreateVpc`?");
invalid!(
    unknown_parameter,
    vec![("1-a/_index.md", page("- id: a\n  call: ec2:CreateVpc\n  with: { CidrBlok: 10.0.0.0/16 }\n"))],
    2,
    "did you mean `CidrBlock`?"
);
invalid!(
    bad_value_for_enum,
    vec![("1-a/_index.md", page("- id: a\n  call: ec2:DescribeVpcAttribute\n  with: { VpcId: vpc-1, Attribute: enableDnsHostname }\n"))],
    1,
    "did you mean `enableDnsHostnames`?"
);
invalid!(
    invalid_jmespath,
    vec![("1-a/_index.md", page("- id: a\n  call: ec2:DescribeVpcs\n  outputs: { id: \"Vpcs[0\" }\n  expect: { \"length(Vpcs\": 1 }\n"))],
    2,
    "invalid JMESPath expression"
);
invalid!(
    bad_duration,
    vec![("1-a/_index.md", page("- id: a\n  call: ec2:DescribeVpcs\n  timeout: 10 minutes\n  retry: { delay: soon }\n"))],
    2,
    "is not a duration"
);
invalid!(duplicate_step_id, vec![("1-a/_index.md", page(&format!("{VPC}{VPC}")))], 1, "step id `lab-vpc` is used twice");
invalid!(
    template_syntax,
    vec![(
        "1-a/_index.md",
        page(&format!(
            "{VPC}- id: b\n  call: ec2:DescribeSubnets\n  with: {{ Filters: [ {{ Name: vpc-id, Values: [ \"{{{{ steps['lab-vpc'].id \" ] }} ] }}\n"
        ))
    )],
    1,
    "template does not parse"
);
invalid!(
    undefined_variable,
    vec![
        ("workshop.yaml", "vars: { region_name: x }\n".to_string()),
        (
            "1-a/_index.md",
            page(
                "- id: a\n  call: ec2:DescribeVpcs\n  with: { Filters: [ { Name: \"tag:Name\", Values: [ \"{{ vars.region_nam }}\", \"{{ lab.regoin }}\", \"{{ item }}\", \"{{ stepz.a }}\" ] } ] }\n"
            )
        ),
    ],
    4,
    "did you mean `vars.region_name`?"
);
invalid!(
    reference_to_later_step,
    vec![(
        "1-a/_index.md",
        page(&format!(
            "- id: b\n  call: ec2:DescribeSubnets\n  with: {{ Filters: [ {{ Name: vpc-id, Values: [ \"{{{{ steps['lab-vpc'].id }}}}\" ] }} ] }}\n{VPC}"
        ))
    )],
    1,
    "no earlier step `lab-vpc`"
);
invalid!(
    reference_to_unknown_output,
    vec![(
        "1-a/_index.md",
        page(&format!(
            "{VPC}- id: b\n  call: ec2:DescribeSubnets\n  with: {{ Filters: [ {{ Name: vpc-id, Values: [ \"{{{{ steps['lab-vpc'].vpc_id }}}}\" ] }} ] }}\n"
        ))
    )],
    1,
    "step `lab-vpc` has no output `vpc_id`"
);
invalid!(
    missing_required_parameter,
    vec![("1-a/_index.md", page("- id: a\n  call: ec2:CreateSubnet\n  with: { CidrBlock: 10.0.1.0/24 }\n"))],
    1,
    "needs parameter `VpcId`"
);
invalid!(
    unknown_prerequisite,
    vec![
        ("1-a/_index.md", "---\ntitle: A\nlabrun:\n  requires: [\"9.9\"]\n---\n".to_string()),
        ("2-b/_index.md", "---\ntitle: B\n---\n".to_string())
    ],
    1,
    "no chapter numbered `9.9`"
);
invalid!(
    prerequisite_cycle,
    vec![
        ("1-a/_index.md", "---\ntitle: A\nlabrun:\n  requires: [\"2\"]\n---\n".to_string()),
        ("2-b/_index.md", "---\ntitle: B\nlabrun:\n  requires: [\"1\"]\n---\n".to_string()),
    ],
    1,
    "cycle: 1 → 2 → 1"
);
invalid!(
    language_drift,
    vec![("1-a/_index.md", page(VPC)), ("1-a/_index.vi.md", page(&VPC.replace("Lab VPC", "Lab VPC 2"))),],
    1,
    "step `lab-vpc` differs"
);
invalid!(unclosed_front_matter, vec![("1-a/_index.md", "---\ntitle: A\n\nno end\n".to_string())], 1, "is never closed");
invalid!(
    bad_toml_front_matter,
    vec![("1-a/_index.md", "+++\ntitle = \"A\nweight = 1\n+++\n".to_string())],
    1,
    "TOML front matter does not parse"
);
invalid!(
    bad_workshop_settings,
    vec![("workshop.yaml", "workshop: w\nregoin: x\naccounts: [\"12\"]\n".to_string()), ("1-a/_index.md", page(VPC))],
    2,
    "did you mean `region`?"
);
invalid!(
    check_on_a_mutating_call,
    vec![("1-a/_index.md", page("- id: a\n  call: ec2:CreateVpc\n  check: true\n  with: { CidrBlock: 10.0.0.0/16 }\n"))],
    1,
    "cannot run in check mode"
);

#[test]
fn several_errors_are_reported_in_one_run() {
    let (text, errors) = diagnose(&[
        ("1-a/_index.md", &page("- id: a\n  call: ec2:CreateVcp\n- id: b\n  call: ec2:DescribeVpcs\n  timeout: forever\n")),
        ("2-b/lab.yaml", "- id: c\n  call: ec2:DescribeVpcs\n  outputs: { x: \"[\" }\n"),
    ]);
    assert_eq!(errors, 3, "{text}");
    for file in ["1-a/_index.md:", "2-b/lab.yaml:"] {
        assert!(text.contains(file), "{file} missing in:\n{text}");
    }
}

#[test]
fn diagnostics_carry_file_line_and_column() {
    let dir = workshop(&[("1-a/_index.md", &page("- id: a\n  call: ec2:CreateVcp\n"))]);
    let loaded = labrun_lab::load(dir.path()).unwrap();
    let d = &loaded.diagnostics[0];
    let loc = d.location().unwrap();
    // Front matter (4 lines), prose, blank, fence, `- id`: the call is on line 9, column 9.
    assert_eq!((loc.line, loc.col), (9, 9), "{}", d.one_line());
    assert!(
        d.one_line().ends_with("error[labrun::unknown-operation]: unknown operation `ec2:CreateVcp` (help: did you mean `ec2:CreateVpc`?)"),
        "{}",
        d.one_line()
    );
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "",
        "---",
        "---\n---",
        "+++",
        "```labrun\n",
        "```labrun\n- [\n```",
        "```labrun\n- id: a\n  call: 5\n```",
        "```labrun\n\u{0}\u{1}\n```",
        "```labrun\n- *x\n```",
        "```labrun\n- &a [*a]\n```",
        "```labrun\n? [a]\n: b\n```",
        "```labrun\n- id: a\n  call: ec2:DescribeVpcs\n  expect: { \"@\": { equals: } }\n```",
        "```labrun\n- id: a\n  call: ec2:DescribeVpcs\n  with: { Filters: \"{{ }}\" }\n  for_each: 3\n```",
        "  \n\n---\ntitle: [\n---\n",
    ];
    for (i, text) in inputs.iter().enumerate() {
        let dir = workshop(&[(&format!("{i}-x/_index.md"), text)]);
        let _ = labrun_lab::load(dir.path()).unwrap();
    }
}

#[test]
fn hugo_pages_with_shortcodes_toml_and_indented_front_matter_load() {
    let dir = workshop(&[
        ("workshop.yaml", "workshop: demo\nregion: us-east-1\nvars: { cidr: 10.0.0.0/16 }\naccounts: [\"123456789012\"]\n"),
        ("_index.md", "---\ntitle: Home\n---\n"),
        (
            "2-prep/_index.md",
            "  ---\ntitle : \"Preparation \"\nweight : 2\npre : \" <b> 2. </b> \"\n---\n{{% notice info %}}\n```labrun\n- not a step: it is inside a shortcode but still a block\n```\n{{% /notice %}}\n",
        ),
        ("2-prep/_index.vi.md", "---\ntitle : \"Chuẩn bị\"\nweight : 2\n---\n"),
        (
            "2-prep/2.1-vpc/_index.md",
            "+++\ntitle = \"VPC\"\nweight = 1\n+++\n1. Create it:\n\n   ```labrun\n   - id: vpc\n     call: ec2:CreateVpc\n     with: { CidrBlock: \"{{ vars.cidr }}\" }\n   ```\n\n{{< figure src=\"/images/x.png\" >}}\n",
        ),
        (
            "2-prep/2.2-role/lab.yaml",
            "title: Role\nweight: 2\nrequires: [\"2.1\"]\nsteps:\n  - id: role\n    call: iam:GetRole\n    with: { RoleName: SSM-Role }\n",
        ),
    ]);
    let loaded = labrun_lab::load(dir.path()).unwrap();
    // The block inside the notice is a real labrun block and is wrong: that is reported
    // (unknown field, no id, no call), and nothing else is.
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["labrun::unknown-field", "labrun::missing-field", "labrun::missing-field"], "{}", render_plain(&loaded.diagnostics));
    let w = &loaded.workshop;
    assert_eq!(w.id, "demo");
    assert_eq!(w.accounts, ["123456789012"]);
    let labels: Vec<&str> = w.chapters.iter().map(|c| c.label()).collect();
    assert_eq!(labels, ["(home)", "2", "2.1", "2.2"]);
    assert_eq!(w.chapters[1].title_vi.as_deref(), Some("Chuẩn bị"));
    assert_eq!(w.chapters[2].steps[0].call, "ec2:CreateVpc");
    assert_eq!(w.chapters[3].requires, ["2.1"]);
    assert_eq!(w.chapters[3].parent, Some(1));
}

#[test]
fn siblings_are_ordered_by_weight_then_number() {
    let dir = workshop(&[
        ("3-c/_index.md", "---\ntitle: C\nweight: 1\n---\n"),
        ("1-a/_index.md", "---\ntitle: A\nweight: 2\n---\n"),
        ("2-b/_index.md", "---\ntitle: B\nweight: 2\n---\n"),
        ("2-b/2.10-x/_index.md", "---\ntitle: X\n---\n"),
        ("2-b/2.9-y/_index.md", "---\ntitle: Y\n---\n"),
    ]);
    let loaded = labrun_lab::load(dir.path()).unwrap();
    let labels: Vec<&str> = loaded.workshop.chapters.iter().map(|c| c.label()).collect();
    assert_eq!(labels, ["3", "1", "2", "2.9", "2.10"]);
}

#[test]
fn chapters_are_addressed_by_number_or_path_with_their_subchapters() {
    let dir = workshop(&[
        ("3-c/_index.md", "---\ntitle: C\n---\n"),
        ("3-c/3.2-d/_index.md", "---\ntitle: D\n---\n"),
        ("3-c/3.2-d/3.2.1-e/_index.md", "---\ntitle: E\n---\n"),
        ("3-c/3.3-f/_index.md", "---\ntitle: F\n---\n"),
    ]);
    let by_number = labrun_lab::select(&dir.path().join("3.2")).unwrap();
    let titles: Vec<&str> = by_number.chapters.iter().map(|&i| by_number.loaded.workshop.chapters[i].title.as_str()).collect();
    assert_eq!(titles, ["D", "E"]);
    let by_path = labrun_lab::select(&dir.path().join("3-c/3.2-d")).unwrap();
    let path_titles: Vec<&str> = by_path.chapters.iter().map(|&i| by_path.loaded.workshop.chapters[i].title.as_str()).collect();
    assert_eq!(path_titles, titles);
    // The whole workshop is loaded, not just the addressed folder.
    assert_eq!(by_path.loaded.workshop.chapters.len(), 4);
    let err = labrun_lab::select(&dir.path().join("3.4")).unwrap_err();
    assert!(err.to_string().contains("no chapter numbered 3.4"), "{err}");
    assert!(labrun_lab::select(Path::new("/definitely/not/here")).is_err());
}

#[test]
fn prerequisites_include_those_of_ancestors_in_dependency_order() {
    let dir = workshop(&[
        ("2-p/_index.md", "---\ntitle: P\n---\n"),
        ("2-p/2.1-q/_index.md", "---\ntitle: Q\n---\n"),
        ("3-c/_index.md", "---\ntitle: C\nlabrun:\n  requires: [\"2\"]\n---\n"),
        ("3-c/3.1-d/_index.md", "---\ntitle: D\n---\n"),
        ("3-c/3.2-e/_index.md", "---\ntitle: E\nlabrun:\n  requires: [\"3.1\"]\n---\n"),
    ]);
    let sel = labrun_lab::select(&dir.path().join("3.2")).unwrap();
    let w = &sel.loaded.workshop;
    let pre: Vec<&str> = labrun_lab::prerequisites(w, &sel.chapters).iter().map(|&i| w.chapters[i].label()).collect();
    assert_eq!(pre, ["2", "2.1", "3.1"]);
}

#[test]
fn schema_file_is_in_sync() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/lab-schema.json")).unwrap_or_default();
    let current = labrun_lab::schema::schema_text();
    if committed != current {
        if std::env::var_os("LABRUN_UPDATE_SCHEMA").is_some() {
            std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/lab-schema.json"), &current).unwrap();
        } else {
            panic!("docs/lab-schema.json is out of date: run `LABRUN_UPDATE_SCHEMA=1 cargo test -p labrun-lab schema` and commit it");
        }
    }
    // Editors need the operations and their parameters in it.
    assert!(current.contains("\"ec2:CreateVpcEndpoint\"") && current.contains("\"PrivateDnsEnabled\""));
}

#[test]
fn every_chapter_of_the_workshop_validates() {
    let labs = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../labs"));
    let loaded = labrun_lab::load(labs).unwrap();
    assert!(loaded.diagnostics.is_empty(), "{}", render_plain(&loaded.diagnostics));
    let w = &loaded.workshop;
    assert_eq!(w.id, "fcj-000058");
    for number in ["2.1.1", "2.1.6", "2.2", "3.1", "3.2.1", "3.2.2.1", "3.2.2.2", "3.2.2.3", "3.2.3", "4.1", "4.4", "5", "6"] {
        let c = w.chapters.iter().find(|c| c.number.as_deref() == Some(number)).unwrap_or_else(|| panic!("chapter {number} missing"));
        assert!(!c.steps.is_empty(), "chapter {number} has no steps");
        assert!(c.title_vi.is_some(), "chapter {number} has no Vietnamese page");
    }
    // The Session Manager steps stay in the chapters, marked as needing real AWS.
    let gaps = w.chapters.iter().flat_map(|c| &c.steps).filter(|s| s.needs_real_aws()).count();
    assert!(gaps >= 5, "{gaps}");
}

/// A deterministic mutation fuzzer: real chapter pages with bytes deleted, duplicated,
/// swapped or replaced by YAML/Markdown/template punctuation must load without panicking.
#[test]
fn mutated_chapter_pages_never_panic() {
    let labs = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../labs"));
    let seeds = [
        "3-Accessibilitytoinstances/3.2-Private-instance/3.2.1-enablevpcdns/_index.md",
        "2-Prerequiste/2.1-createec2/2.1.4-createsecgroup/_index.md",
        "6-cleanup/_index.md",
        "workshop.yaml",
    ];
    const NOISE: &[u8] = b"{}[]:,-'\"`|>&*!%#@?\n\t {{}}{%ml\xc3\xa1\xe1\xba\xa1";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let dir = tempfile::tempdir().unwrap();
    for seed in seeds {
        let original = std::fs::read(labs.join(seed)).unwrap();
        for _ in 0..150 {
            let mut bytes = original.clone();
            for _ in 0..(1 + next() % 6) {
                if bytes.is_empty() {
                    break;
                }
                let at = (next() as usize) % bytes.len();
                match next() % 4 {
                    0 => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, NOISE[(next() as usize) % NOISE.len()]),
                    2 => {
                        let end = (at + 1 + (next() as usize) % 40).min(bytes.len());
                        let chunk = bytes[at..end].to_vec();
                        bytes.splice(at..at, chunk);
                    }
                    _ => bytes[at] = NOISE[(next() as usize) % NOISE.len()],
                }
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let target = if seed.ends_with(".yaml") { dir.path().join("workshop.yaml") } else { dir.path().join("1-x/_index.md") };
            std::fs::create_dir_all(dir.path().join("1-x")).unwrap();
            std::fs::write(&target, &text).unwrap();
            let loaded = labrun_lab::load(dir.path()).unwrap();
            // Rendering walks every span: it must not panic either.
            let _ = render_plain(&loaded.diagnostics);
            let _ = std::fs::remove_file(&target);
        }
    }
}
