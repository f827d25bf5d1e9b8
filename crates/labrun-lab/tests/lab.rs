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
invalid!(
    pages_without_a_paginator,
    vec![(
        "1-a/_index.md",
        page(
            "- id: a\n  call: ec2:DescribeVpcAttribute\n  pages: first\n  with: { VpcId: vpc-1, Attribute: enableDnsHostnames }\n- id: b\n  call: ec2:CreateVpc\n  pages: all\n  with: { CidrBlock: 10.0.0.0/16 }\n"
        )
    )],
    2,
    "`ec2:DescribeVpcAttribute` answers in one page: its service model has no paginator for it"
);
invalid!(
    bad_pages_value,
    vec![(
        "1-a/_index.md",
        page("- id: a\n  call: ec2:DescribeInstances\n  pages: 2\n- id: b\n  call: ec2:DescribeInstances\n  pages: some\n")
    )],
    2,
    "unknown `pages: some`"
);
invalid!(
    unknown_waiter,
    vec![(
        "1-a/_index.md",
        page(
            "- id: a\n  call: ec2:DescribeInstances\n  wait: InstanceRuning\n- id: b\n  call: labrun:CheckSsmReachability\n  wait: Reachable\n  with: { InstanceId: i-1 }\n"
        )
    )],
    2,
    "did you mean `InstanceRunning`?"
);
invalid!(
    waiter_of_another_operation,
    vec![(
        "1-a/_index.md",
        page(
            "- id: a\n  call: ec2:DescribeVpcs\n  wait: InstanceRunning\n- id: b\n  call: ec2:RunInstances\n  wait: InstanceRunning\n  with: { ImageId: ami-1, MinCount: 1, MaxCount: 1 }\n"
        )
    )],
    2,
    "waiter `InstanceRunning` polls `ec2:DescribeInstances`, not `ec2:DescribeVpcs`"
);
invalid!(unknown_service, vec![("1-a/_index.md", page("- id: a\n  call: ec3:DescribeVpcs\n"))], 1, "did you mean `ec2`?");
invalid!(
    unknown_modelled_operation,
    vec![("1-a/_index.md", page("- id: a\n  call: lambda:GetFuntion\n  with: { FunctionName: f }\n"))],
    1,
    "did you mean `lambda:GetFunction`?"
);
invalid!(
    unknown_parameter_of_a_modelled_operation,
    vec![(
        "1-a/_index.md",
        page(
            "- id: a\n  call: lambda:GetFunction\n  with: { FunctionNam: f }\n- id: b\n  call: sqs:GetQueueUrl\n  with: { QueueName: q, Owner: x }\n"
        )
    )],
    3,
    "did you mean `FunctionName`?"
);
invalid!(
    wrong_types_in_a_modelled_operation,
    vec![(
        "1-a/_index.md",
        page(concat!(
            "- id: fn\n  call: lambda:CreateFunction\n",
            "  with:\n    FunctionName: f\n    Role: arn:aws:iam::111122223333:role/r\n    Code: { S3Bucket: 5 }\n",
            "    MemorySize: lots\n    Publish: \"yes\"\n    Environment: { Variables: [ A ] }\n    Tags: { team: 1 }\n",
            "- id: item\n  call: dynamodb:PutItem\n",
            "  with: { TableName: t, Item: { pk: { S: a }, n: { N: 1 }, m: { M: { x: { L: [ { S: deep } ] } } }, bad: { Q: x } } }\n",
            "- id: events\n  call: logs:GetLogEvents\n  with: { logStreamName: s, startTime: [ 1 ], startFromHead: true }\n",
        ))
    )],
    8,
    "`MemorySize` must be an integer, found a string"
);
invalid!(
    bad_value_for_a_modelled_enum,
    vec![(
        "1-a/_index.md",
        page(
            "- id: a\n  call: lambda:CreateFunction\n  with: { FunctionName: f, Role: r, Code: { ZipFile: UEsFBg== }, Runtime: python3.x, Architectures: [ arm46 ] }\n"
        )
    )],
    2,
    "did you mean `arm64`?"
);
invalid!(
    unknown_member_of_the_response,
    vec![(
        "1-a/_index.md",
        page(concat!(
            "- id: vpc\n  call: ec2:CreateVpc\n  with: { CidrBlock: 10.0.0.0/16 }\n",
            "  outputs: { id: Vpc.VpcID, ok: Vpc.VpcId, tags: \"Vpc.Tags[?Key == 'Name'].Value | [0]\" }\n",
            "- id: vpcs\n  call: ec2:DescribeVpcs\n",
            "  expect: { \"Vpcs.VpcId\": x, \"length(Vpcs[?Stat == 'available'])\": 1, \"Vpcs[].CidrBlockAssociationSet[].CidrBlock\": { exists: true } }\n",
            "  until: { \"Vpcz[0].State\": available, \"Vpcs[0].State.Name\": available }\n",
        ))
    )],
    5,
    "no member `VpcID` in `Vpc`"
);
invalid!(
    mutating_call_without_undo,
    vec![(
        "1-a/_index.md",
        page(concat!(
            "- id: code\n  call: lambda:UpdateFunctionCode\n  with: { FunctionName: f, S3Bucket: b, S3Key: k }\n",
            "- id: declared\n  call: lambda:UpdateFunctionCode\n  with: { FunctionName: f, S3Bucket: b, S3Key: k }\n  cleanup: none\n",
            "- id: removal\n  call: lambda:DeleteFunction\n  with: { FunctionName: f }\n",
        ))
    )],
    1,
    "labrun knows no way to undo it"
);

invalid!(
    blob_not_base64,
    vec![(
        "1-a/_index.md",
        page("- id: a\n  call: lambda:Invoke\n  with: { FunctionName: notes, Payload: \"{\\\"note\\\": 1}\" }\n  cleanup: none\n")
    )],
    1,
    "`Payload` is a blob, given base64-encoded as the AWS CLI takes it"
);

#[test]
fn modelled_operations_validate_and_carry_their_undo() {
    let (text, errors) = diagnose(&[(
        "1-a/_index.md",
        &page(concat!(
            "- id: role\n  call: iam:CreateRole\n",
            "  with: { RoleName: r, AssumeRolePolicyDocument: { Version: \"2012-10-17\", Statement: [] } }\n",
            "  outputs: { arn: Role.Arn }\n",
            "- id: fn\n  call: lambda:CreateFunction\n",
            "  with: { FunctionName: f, Role: \"{{ steps.role.arn }}\", Runtime: python3.12, Handler: h.h, Code: { ZipFile: UEsFBg== }, Timeout: 30, Environment: { Variables: { A: b } } }\n",
            "  outputs: { arn: FunctionArn, state: State }\n  expect: { \"Environment.Variables.A\": b }\n",
            "- id: table\n  call: dynamodb:CreateTable\n",
            "  with: { TableName: t, BillingMode: PAY_PER_REQUEST, KeySchema: [ { AttributeName: pk, KeyType: HASH } ], AttributeDefinitions: [ { AttributeName: pk, AttributeType: S } ] }\n",
            "  outputs: { name: TableDescription.TableName }\n",
            "- id: wait\n  call: dynamodb:DescribeTable\n  with: { TableName: t }\n  until: { Table.TableStatus: ACTIVE }\n",
            "- id: query\n  call: dynamodb:Query\n",
            "  with: { TableName: t, KeyConditionExpression: \"pk = :v\", ExpressionAttributeValues: { \":v\": { S: a } } }\n",
            "  expect: { \"Items[0].pk.S\": a, Count: 1 }\n",
            "- id: machine\n  call: stepfunctions:CreateStateMachine\n",
            "  with: { name: m, roleArn: x, definition: { StartAt: A, States: { A: { Type: Pass, End: true } } } }\n",
        )),
    )]);
    assert_eq!(errors, 0, "{text}");
    let dir =
        workshop(&[("1-a/_index.md", &page("- id: fn\n  call: lambda:CreateFunction\n  with: { FunctionName: f, Role: r, Code: {} }\n"))]);
    let loaded = labrun_lab::load(dir.path()).unwrap();
    let step = &loaded.workshop.chapters[0].steps[0];
    assert!(!step.runs_in_check());
    assert!(matches!(step.op.undo, labrun_lab::catalog::Undo::Call { op: "lambda:DeleteFunction", .. }));
}

/// Billion laughs: nine levels of nine aliases would be 387 million values.
fn alias_bomb() -> String {
    let mut text = "- id: a\n  call: ec2:DescribeVpcs\n  with:\n    a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n".to_string();
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"]) {
        text += &format!("    {name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(", "));
    }
    text
}

invalid!(yaml_alias_bomb, vec![("1-a/_index.md", page(&alias_bomb()))], 1, "expands to more than labrun allows");
invalid!(
    yaml_nested_too_deep,
    vec![(
        "1-a/_index.md",
        page(&format!("- id: a\n  call: ec2:DescribeVpcs\n  with: {{ Filters: {}{} }}\n", "[".repeat(70), "]".repeat(70)))
    )],
    1,
    "nested more than 64 levels deep"
);
invalid!(
    jmespath_too_complex,
    vec![(
        "1-a/_index.md",
        page(&format!(
            "- id: a\n  call: ec2:DescribeVpcs\n  outputs: {{ id: \"{}Vpcs{}\" }}\n  expect: {{ \"{}Vpcs\": true }}\n",
            "(".repeat(60),
            ")".repeat(60),
            "!".repeat(51)
        ))
    )],
    2,
    "nests 60 levels deep; labrun allows at most 50"
);
invalid!(
    values_out_of_range,
    vec![(
        "1-a/_index.md",
        page(
            "- id: a\n  call: ec2:DescribeVpcs\n  timeout: 999999h\n  interval: 0s\n  retry: { attempts: 50, delay: 1h }\n- id: b\n  call: ec2:DescribeVpcs\n  timeout: 1m\n  interval: 5m\n"
        )
    )],
    5,
    "`timeout: 999999h` is longer than labrun allows (24h)"
);

#[test]
fn limits_are_not_in_the_way_of_ordinary_labs() {
    // A few aliases, the largest bounds themselves, and a list just under the cap load cleanly.
    let items = vec!["x"; labrun_lab::limits::MAX_FOR_EACH_ITEMS].join(", ");
    let (text, errors) = diagnose(&[(
        "1-a/_index.md",
        &page(&format!(
            "- id: a\n  call: ec2:DescribeVpcs\n  with: {{ Filters: [ &f {{ Name: \"tag:Name\", Values: [ Lab VPC ] }}, *f, *f ] }}\n  timeout: 24h\n  interval: 100ms\n  retry: {{ attempts: 20, delay: 10ms }}\n- id: b\n  call: ec2:DescribeVpcs\n  with: {{ VpcIds: [ \"{{{{ item }}}}\" ] }}\n  for_each: [ {items} ]\n"
        )),
    )]);
    assert_eq!(errors, 0, "{text}");
}

#[test]
fn pages_and_wait_are_read_into_the_step() {
    let dir = workshop(&[(
        "1-a/_index.md",
        &page(
            "- id: a\n  call: ec2:DescribeInstances\n  pages: first\n- id: b\n  call: ec2:DescribeInstances\n  wait: InstanceRunning\n  until: { \"length(Reservations)\": 1 }\n- id: c\n  call: s3:ListObjectsV2\n  with: { Bucket: b }\n",
        ),
    )]);
    let loaded = labrun_lab::load(dir.path()).unwrap();
    assert!(loaded.diagnostics.is_empty(), "{}", render_plain(&loaded.diagnostics));
    let steps = &loaded.workshop.chapters.iter().find(|c| c.number.as_deref() == Some("1")).unwrap().steps;
    assert_eq!((steps[0].pages, steps[0].wait.as_deref()), (labrun_lab::Pages::First, None));
    assert_eq!((steps[1].pages, steps[1].wait.as_deref()), (labrun_lab::Pages::All, Some("InstanceRunning")));
    assert_eq!(steps[1].until.len(), 1, "`wait` and `until` go together: both must hold");
    assert_eq!(steps[2].pages, labrun_lab::Pages::All, "paged by default");
}

#[test]
fn a_long_for_each_list_or_expression_is_refused() {
    let items = vec!["x"; labrun_lab::limits::MAX_FOR_EACH_ITEMS + 1].join(", ");
    let long = vec!["Vpcs"; 1000].join(" || ");
    let dir = workshop(&[(
        "1-a/_index.md",
        &page(&format!(
            "- id: a\n  call: ec2:DescribeVpcs\n  with: {{ VpcIds: [ \"{{{{ item }}}}\" ] }}\n  for_each: [ {items} ]\n  outputs: {{ id: \"{long}\" }}\n"
        )),
    )]);
    let loaded = labrun_lab::load(dir.path()).unwrap();
    let lines: Vec<String> = loaded.diagnostics.iter().map(|d| d.one_line()).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("error[labrun::out-of-range]: `for_each` lists 1001 items")), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("error[labrun::jmespath-too-complex]: JMESPath expression is 7996 bytes long")), "{lines:#?}");
    // Both point into the page: file, line and column.
    assert!(loaded.diagnostics.iter().all(|d| d.location().is_some_and(|l| l.line == 11 || l.line == 12)), "{lines:#?}");
}

use labrun_lab::limits::fuzz::{Rng, on_small_stack};

#[test]
fn deeply_nested_jmespath_is_refused_on_a_small_stack() {
    // Each is under the length limit and would overflow a 2 MiB stack inside the `jmespath`
    // crate (they do at 100 to 400 levels); the depth limit stops them before it parses.
    let deep = [
        format!("{}a{}", "(".repeat(1000), ")".repeat(1000)),
        format!("{}a{}", "[".repeat(1000), "]".repeat(1000)),
        format!("{}a{}", "{a:".repeat(1000), "}".repeat(1000)),
        format!("{}a", "!".repeat(4000)),
        format!("{}a", "&".repeat(4000)),
        format!("a{}", "[]".repeat(1000)),
        vec!["a"; 1000].join("."),
        format!("{}a{}", "length(".repeat(500), ")".repeat(500)),
    ];
    for expr in deep {
        let shown = format!("{}…", &expr[..20]);
        let (codes, text) = on_small_stack(move || {
            let dir = workshop(&[("1-a/_index.md", &page(&format!("- id: a\n  call: ec2:DescribeVpcs\n  outputs: {{ id: '{expr}' }}\n")))]);
            let loaded = labrun_lab::load(dir.path()).unwrap();
            (
                loaded.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>(),
                loaded.diagnostics.iter().map(|d| d.one_line()).collect::<Vec<_>>(),
            )
        });
        assert_eq!(codes, ["labrun::jmespath-too-complex"], "{shown}: {text:?}");
        assert!(text[0].contains("1-a/_index.md:10:"), "{text:?}");
    }
}

#[test]
fn yaml_that_nests_through_aliases_is_refused() {
    // Each alias adds 60 levels while adding few values: the depth limit counts what aliases bring.
    let mut text = "- id: a\n  call: ec2:DescribeVpcs\n  with:\n    a0: &a0 x\n".to_string();
    for i in 1..40 {
        text += &format!("    a{i}: &a{i} {}*a{}{}\n", "[".repeat(60), i - 1, "]".repeat(60));
    }
    let (out, errors) = on_small_stack(move || diagnose(&[("1-a/_index.md", &page(&text))]));
    assert_eq!(errors, 1, "{out}");
    assert!(out.contains("labrun::yaml-too-deep"), "{out}");
}

#[cfg(unix)]
#[test]
fn symlinked_folders_are_walked_once_and_loops_are_reported() {
    use std::os::unix::fs::symlink;
    let dir = workshop(&[
        ("1-a/_index.md", "---\ntitle: A\n---\n"),
        ("1-a/1.1-b/_index.md", "---\ntitle: B\n---\n"),
        ("2-c/_index.md", "---\ntitle: C\n---\n"),
    ]);
    let elsewhere = workshop(&[("_index.md", "---\ntitle: Elsewhere\n---\n")]);
    let root = dir.path();
    symlink("..", root.join("1-a/1.1-b/up")).unwrap(); // back to 1-a
    symlink(root, root.join("2-c/root")).unwrap(); // back to the workshop root
    symlink(root.join("1-a/1.1-b"), root.join("0-again")).unwrap(); // a second way to 1.1
    symlink(elsewhere.path(), root.join("3-shared")).unwrap(); // outside: followed
    let loaded = labrun_lab::load(root).unwrap();
    let titles: Vec<&str> = loaded.workshop.chapters.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, ["A", "B", "C", "Elsewhere"]);
    assert!(loaded.diagnostics.iter().all(|d| !d.is_error()), "{}", render_plain(&loaded.diagnostics));
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["labrun::symlink-duplicate", "labrun::symlink-loop", "labrun::symlink-loop"]);
    let real = std::fs::canonicalize(root).unwrap();
    let text = render_plain(&loaded.diagnostics)
        .replace(&format!("{}/", root.display()), "")
        .replace(&format!("{}/", real.display()), "")
        .replace(&real.display().to_string(), "<workshop>")
        .replace(&root.display().to_string(), "<workshop>");
    insta::assert_snapshot!("symlink_loop", text);
}

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
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut next = move || rng.next_u64();
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

const ODD_SCALARS: &[&str] = &[
    "99999999999999999999999999",
    "-9223372036854775809",
    "1e999",
    "1.5e308",
    "-0.0",
    ".inf",
    "0x1F",
    "0001",
    "~",
    "no",
    "\"tên: Tạo VPC 🚀\"",
    "\"\\u202e\\u0000\"",
    "'{{ item }}'",
    "\"{{ steps['a'].id }}\"",
    "\"{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}\"",
    "\"{{ \"",
    "ec2:DescribeVpcs",
    "999999h",
    "0s",
    "Vpcs[0].VpcId",
];

/// A JMESPath-ish string: mostly valid pieces, sometimes very deep or very long.
fn gen_jmespath(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 || rng.below(4) == 0 {
        return rng.pick(&["a", "Vpcs", "@", "'raw (['", "\"q[\"", "`[1,{\"a\":2}]`", "`\"x\"`", "length(Vpcs)", "*"]).to_string();
    }
    let inner = gen_jmespath(rng, depth - 1);
    match rng.below(14) {
        0 => format!("{inner}.{}", gen_jmespath(rng, depth - 1)),
        1 => format!("{inner} | {}", gen_jmespath(rng, depth - 1)),
        2 => format!("{inner} || {}", gen_jmespath(rng, depth - 1)),
        3 => format!("!{inner}"),
        4 => format!("&{inner}"),
        5 => format!("({inner})"),
        6 => format!("[{inner}, a]"),
        7 => format!("{{a: {inner}}}"),
        8 => format!("{inner}[?a == {}]", gen_jmespath(rng, depth - 1)),
        9 => format!("{inner}[]"),
        10 => format!("{inner}[*]"),
        11 => format!("sort_by({inner}, &a)"),
        // Far past every limit, balanced or not.
        12 => {
            let (open, close) = [("(", ")"), ("[", "]"), ("{a:", "}"), ("!", ""), ("&", ""), ("a.", "")][rng.below(6)];
            let n = 1 + rng.below(3000);
            format!("{}{inner}{}", open.repeat(n), close.repeat(if rng.below(2) == 0 { n } else { rng.below(n) }))
        }
        _ => format!("{inner}[{}:{}]", rng.below(5) as i64 - 2, rng.below(5)),
    }
}

/// A YAML value: flow collections, anchors and aliases, odd scalars, generated expressions.
fn gen_yaml(rng: &mut Rng, depth: usize) -> String {
    let anchor = |rng: &mut Rng| if rng.below(5) == 0 { format!("&{} ", rng.pick(&["a", "b", "c"])) } else { String::new() };
    if depth == 0 || rng.below(3) == 0 {
        return match rng.below(6) {
            0 => format!("*{}", rng.pick(&["a", "b", "c", "nope"])),
            1 => format!("\"{}\"", gen_jmespath(rng, 4).replace('\\', "\\\\").replace('"', "\\\"")),
            _ => format!("{}{}", anchor(rng), rng.pick(ODD_SCALARS)),
        };
    }
    match rng.below(8) {
        0 => {
            // Far deeper than the limit.
            let n = 1 + rng.below(200);
            format!("{}x{}", "[".repeat(n), "]".repeat(n))
        }
        1..=3 => {
            let items: Vec<String> = (0..rng.below(5)).map(|_| gen_yaml(rng, depth - 1)).collect();
            format!("{}[{}]", anchor(rng), items.join(", "))
        }
        _ => {
            let items: Vec<String> =
                (0..rng.below(5)).map(|i| format!("{}{i}: {}", rng.pick(&["k", "Name", "?", "*a"]), gen_yaml(rng, depth - 1))).collect();
            format!("{}{{{}}}", anchor(rng), items.join(", "))
        }
    }
}

/// A lab block: steps with generated fields, now and then a billion-laughs tail.
fn gen_block(rng: &mut Rng) -> String {
    let mut text = String::new();
    for i in 0..1 + rng.below(3) {
        text += &format!("- id: s{i}\n  call: {}\n", rng.pick(&["ec2:DescribeVpcs", "ec2:CreateVpc", "iam:GetRole", "nope"]));
        for _ in 0..rng.below(6) {
            let field =
                rng.pick(&["with", "outputs", "expect", "until", "timeout", "interval", "retry", "for_each", "when", "cleanup", "title"]);
            let value = match field {
                "outputs" => format!("{{ x: '{}' }}", gen_jmespath(rng, 6).replace('\'', "''")),
                "expect" | "until" => format!("{{ '{}': {} }}", gen_jmespath(rng, 6).replace('\'', "''"), gen_yaml(rng, 3)),
                "retry" => format!("{{ attempts: {}, delay: {} }}", gen_yaml(rng, 0), gen_yaml(rng, 0)),
                _ => gen_yaml(rng, 6),
            };
            text += &format!("  {field}: {value}\n");
        }
    }
    if rng.below(8) == 0 {
        text += "- &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
        for l in 1..9 {
            text += &format!("- &l{l} [{}]\n", vec![format!("*l{}", l - 1); 9].join(", "));
        }
    }
    text
}

/// Generated hostile lab pages (deep nesting, aliases, huge numbers, odd unicode, deep and long
/// JMESPath, runaway templates) load on a 2 MiB stack without panicking, each in well under a
/// second, and every diagnostic they produce points into the page.
#[test]
fn generated_hostile_pages_load_quickly_on_a_small_stack() {
    on_small_stack(|| {
        let mut rng = Rng::new(0x5DEE_CE66_D1CE_B00C);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("1-x")).unwrap();
        let started = std::time::Instant::now();
        let mut codes = std::collections::BTreeSet::new();
        for case in 0..300 {
            let text = page(&gen_block(&mut rng));
            std::fs::write(dir.path().join("1-x/_index.md"), &text).unwrap();
            let t = std::time::Instant::now();
            let loaded = labrun_lab::load(dir.path()).unwrap();
            let rendered = render_plain(&loaded.diagnostics);
            assert!(t.elapsed() < std::time::Duration::from_secs(2), "case {case} took {:?}:\n{text}", t.elapsed());
            for d in &loaded.diagnostics {
                assert!(d.location().is_some_and(|l| l.file.ends_with("1-x/_index.md")), "case {case}: {}\n{text}", d.one_line());
            }
            assert!(loaded.diagnostics.is_empty() || !rendered.is_empty());
            codes.extend(loaded.diagnostics.iter().map(|d| d.code));
        }
        // The generator does reach every limit (otherwise it tests nothing).
        for code in ["labrun::yaml-too-large", "labrun::yaml-too-deep", "labrun::jmespath-too-complex", "labrun::out-of-range"] {
            assert!(codes.contains(code), "{code} never reached: {codes:?}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    });
}

#[test]
fn deep_toml_front_matter_is_refused_on_a_small_stack() {
    let (text, errors) = on_small_stack(|| {
        let deep = format!("+++\ntitle = \"A\"\n[labrun]\nvars = {{ a = {}1{} }}\n+++\n", "[".repeat(5000), "]".repeat(5000));
        diagnose(&[("1-a/_index.md", &deep)])
    });
    assert_eq!(errors, 1, "{text}");
    assert!(text.contains("TOML front matter does not parse"), "{text}");
}
