//! Validation speed on a generated workshop of 1,000 chapters (8 steps each, templates,
//! JMESPath, prerequisites), next to a baseline that only reads the same files, in one run.
//! Target: full validation under 0.2 s on one core.
//!
//! Run: `cargo bench -p labrun-lab --bench validate`

use std::path::Path;
use std::time::{Duration, Instant};

const STEPS: &str = r#"
```labrun
- id: lab-vpc
  call: ec2:DescribeVpcs
  with: { Filters: [ { Name: "tag:Name", Values: [ "{{ vars.name }}" ] } ] }
  expect: { "length(Vpcs)": 1 }
  outputs: { id: "Vpcs[0].VpcId" }
- id: subnet
  call: ec2:CreateSubnet
  with: { VpcId: "{{ steps['lab-vpc'].id }}", CidrBlock: 10.0.1.0/24, TagSpecifications: [ { ResourceType: subnet, Tags: [ { Key: Name, Value: S } ] } ] }
  outputs: { id: Subnet.SubnetId }
- id: attr
  call: ec2:ModifySubnetAttribute
  with: { SubnetId: "{{ steps.subnet.id }}", MapPublicIpOnLaunch: { Value: true } }
- id: check-subnet
  call: ec2:DescribeSubnets
  with: { SubnetIds: [ "{{ steps.subnet.id }}" ] }
  until: { "Subnets[0].State": available }
  timeout: 2m
  expect: { "Subnets[0].MapPublicIpOnLaunch": true, "Subnets[0].CidrBlock": { matches: "^10\\." } }
- id: sg
  call: ec2:CreateSecurityGroup
  with: { GroupName: G, Description: G, VpcId: "{{ steps['lab-vpc'].id }}" }
  outputs: { id: GroupId }
- id: rule
  call: ec2:AuthorizeSecurityGroupIngress
  with: { GroupId: "{{ steps.sg.id }}", IpPermissions: [ { IpProtocol: tcp, FromPort: 443, ToPort: 443, IpRanges: [ { CidrIp: 10.0.0.0/16 } ] } ] }
- id: check-sg
  call: ec2:DescribeSecurityGroups
  with: { GroupIds: [ "{{ steps.sg.id }}" ] }
  expect: { "SecurityGroups[0].IpPermissions": { contains: { FromPort: 443 } } }
- id: role
  call: iam:GetRole
  with: { RoleName: SSM-Role }
  expect: { "Role.RoleName": SSM-Role }
```
"#;

fn generate(root: &Path, chapters: usize) {
    std::fs::write(root.join("workshop.yaml"), "workshop: bench\nvars: { name: Lab VPC }\n").unwrap();
    for i in 0..chapters {
        let (major, minor) = (i / 50 + 1, i % 50 + 1);
        let dir = root.join(format!("{major}-part")).join(format!("{major}.{minor}-chapter"));
        std::fs::create_dir_all(&dir).unwrap();
        if minor == 1 {
            std::fs::write(root.join(format!("{major}-part/_index.md")), format!("---\ntitle: Part {major}\nweight: {major}\n---\n"))
                .unwrap();
        }
        let requires = if major > 1 { format!("labrun:\n  requires: [\"{}\"]\n", major - 1) } else { String::new() };
        let page = format!(
            "---\ntitle : \"Chapter {major}.{minor}\"\nweight : {minor}\npre : \" <b> {major}.{minor} </b> \"\n{requires}---\n{{{{% notice info %}}}}\nProse.\n{{{{% /notice %}}}}\n{STEPS}"
        );
        std::fs::write(dir.join("_index.md"), &page).unwrap();
        std::fs::write(dir.join("_index.vi.md"), "---\ntitle : \"Chương\"\n---\nNội dung.\n").unwrap();
    }
}

fn read_all(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += read_all(&p);
        } else {
            n += std::fs::read_to_string(&p).unwrap().len();
        }
    }
    n
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 1000);
    let (mut read, mut validate) = (Vec::new(), Vec::new());
    let mut steps = 0;
    for _ in 0..7 {
        let t = Instant::now();
        std::hint::black_box(read_all(dir.path()));
        read.push(t.elapsed());
        let t = Instant::now();
        let loaded = labrun_lab::load(dir.path()).unwrap();
        validate.push(t.elapsed());
        assert!(loaded.diagnostics.is_empty(), "{}", labrun_lab::diag::render_plain(&loaded.diagnostics));
        steps = loaded.workshop.chapters.iter().map(|c| c.steps.len()).sum();
    }
    // The first load also parses the service models its operations come from (once a process).
    let first = validate[0];
    let (r, v) = (median(read), median(validate));
    println!("validate: 1000 chapters, {steps} steps (median of 7, one thread)");
    println!("  baseline: read every file          {:>8.1} ms", r.as_secs_f64() * 1e3);
    println!(
        "  labrun:   load + validate          {:>8.1} ms   ({:.1}x the read; target < 200 ms)",
        v.as_secs_f64() * 1e3,
        v.as_secs_f64() / r.as_secs_f64()
    );
    println!("  first load (parses the EC2 and IAM models) {:>8.1} ms", first.as_secs_f64() * 1e3);
}
