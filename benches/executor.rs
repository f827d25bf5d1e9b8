//! The engine's overhead: a chapter of 20 EC2 calls run by labrun (templating, JMESPath,
//! expectations, tagging) next to the same 20 calls made by a minimal program using the SDK
//! directly, against the same LocalStack, alternating, in one run. Three chapters:
//! - typed: operations with a typed aws-sdk-ec2 binding, `cleanup: none` (no ledger entries);
//! - typed, recorded: the same with `cleanup: auto` on the creates, so each writes its intent
//!   and its undo to the ledger (fsync'd) around the call;
//! - modelled: DHCP option sets, operations labrun has no binding for, sent through the
//!   protocol layer built from the service model (`labrun-aws/src/model_call.rs`).
//! Target: labrun within 10% of the direct program.
//!
//! Run: `cargo bench --bench executor` (starts its own LocalStack; or set LABRUN_TEST_ENDPOINT)

use aws_sdk_ec2::types::{AttributeBooleanValue, Filter, ResourceType, Tag, TagSpecification};
use labrun_aws::{AwsBackend, Connect};
use labrun_exec::{Backend, Engine, Ledger, Mode, Quiet, Reporting, Role};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 7;

/// Four VPCs: create, describe by tag, turn DNS hostnames on, read the attribute, delete = 20 calls.
/// `cleanup` is `none` or `auto` for the create (a restore of the attribute would add a read).
fn chapter(cleanup: &str) -> String {
    let mut s = String::new();
    for i in 0..4 {
        s.push_str(&format!(
            r#"
- id: create{i}
  call: ec2:CreateVpc
  with: {{ CidrBlock: 10.{i}.0.0/16, TagSpecifications: [ {{ ResourceType: vpc, Tags: [ {{ Key: Name, Value: "bench{i}-{{{{ lab.run_id }}}}" }} ] }} ] }}
  cleanup: {cleanup}
  outputs: {{ id: Vpc.VpcId }}
- id: find{i}
  call: ec2:DescribeVpcs
  with: {{ Filters: [ {{ Name: "tag:Name", Values: [ "bench{i}-{{{{ lab.run_id }}}}" ] }} ] }}
  expect: {{ "length(Vpcs)": 1, "Vpcs[0].CidrBlock": 10.{i}.0.0/16 }}
- id: dns{i}
  call: ec2:ModifyVpcAttribute
  with: {{ VpcId: "{{{{ steps.create{i}.id }}}}", EnableDnsHostnames: {{ Value: true }} }}
  cleanup: none
- id: attr{i}
  call: ec2:DescribeVpcAttribute
  with: {{ VpcId: "{{{{ steps.create{i}.id }}}}", Attribute: enableDnsHostnames }}
  expect: {{ "EnableDnsHostnames.Value": true }}
- id: delete{i}
  call: ec2:DeleteVpc
  with: {{ VpcId: "{{{{ steps.create{i}.id }}}}" }}
"#
        ));
    }
    s
}

async fn direct(ec2: &aws_sdk_ec2::Client, run: usize) {
    for i in 0..4 {
        let name = format!("direct{i}-{run}");
        let tags =
            TagSpecification::builder().resource_type(ResourceType::Vpc).tags(Tag::builder().key("Name").value(&name).build()).build();
        let vpc = ec2.create_vpc().cidr_block(format!("10.{i}.0.0/16")).tag_specifications(tags).send().await.unwrap();
        let id = vpc.vpc().and_then(|v| v.vpc_id()).unwrap().to_string();
        let found = ec2.describe_vpcs().filters(Filter::builder().name("tag:Name").values(&name).build()).send().await.unwrap();
        assert_eq!(found.vpcs().len(), 1);
        ec2.modify_vpc_attribute()
            .vpc_id(&id)
            .enable_dns_hostnames(AttributeBooleanValue::builder().value(true).build())
            .send()
            .await
            .unwrap();
        let attr = ec2
            .describe_vpc_attribute()
            .vpc_id(&id)
            .attribute(aws_sdk_ec2::types::VpcAttributeName::EnableDnsHostnames)
            .send()
            .await
            .unwrap();
        assert_eq!(attr.enable_dns_hostnames().and_then(|a| a.value()), Some(true));
        ec2.delete_vpc().vpc_id(&id).send().await.unwrap();
    }
}

/// Four DHCP option sets through the model-driven path: create, describe by tag, by id, by its
/// domain name, delete = 20 calls.
fn modelled_chapter() -> String {
    let mut s = String::new();
    for i in 0..4 {
        s.push_str(&format!(
            r#"
- id: create{i}
  call: ec2:CreateDhcpOptions
  with: {{ DhcpConfigurations: [ {{ Key: domain-name, Values: [ "bench{i}-{{{{ lab.run_id }}}}.internal" ] }} ], TagSpecifications: [ {{ ResourceType: dhcp-options, Tags: [ {{ Key: Name, Value: "bench{i}-{{{{ lab.run_id }}}}" }} ] }} ] }}
  cleanup: none
  outputs: {{ id: DhcpOptions.DhcpOptionsId }}
- id: tagged{i}
  call: ec2:DescribeDhcpOptions
  with: {{ Filters: [ {{ Name: "tag:Name", Values: [ "bench{i}-{{{{ lab.run_id }}}}" ] }} ] }}
  expect: {{ "length(DhcpOptions)": 1 }}
- id: byid{i}
  call: ec2:DescribeDhcpOptions
  with: {{ DhcpOptionsIds: [ "{{{{ steps.create{i}.id }}}}" ] }}
  expect: {{ "DhcpOptions[0].DhcpConfigurations[0].Key": domain-name }}
- id: bykey{i}
  call: ec2:DescribeDhcpOptions
  with: {{ Filters: [ {{ Name: key, Values: [ domain-name ] }} ], DhcpOptionsIds: [ "{{{{ steps.create{i}.id }}}}" ] }}
  expect: {{ "length(DhcpOptions)": 1 }}
- id: delete{i}
  call: ec2:DeleteDhcpOptions
  with: {{ DhcpOptionsId: "{{{{ steps.create{i}.id }}}}" }}
"#
        ));
    }
    s
}

async fn direct_modelled(ec2: &aws_sdk_ec2::Client, run: usize) {
    for i in 0..4 {
        let name = format!("direct{i}-{run}");
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::DhcpOptions)
            .tags(Tag::builder().key("Name").value(&name).build())
            .build();
        let conf = aws_sdk_ec2::types::NewDhcpConfiguration::builder().key("domain-name").values(format!("{name}.internal")).build();
        let made = ec2.create_dhcp_options().dhcp_configurations(conf).tag_specifications(tags).send().await.unwrap();
        let id = made.dhcp_options().and_then(|d| d.dhcp_options_id()).unwrap().to_string();
        let found = ec2.describe_dhcp_options().filters(Filter::builder().name("tag:Name").values(&name).build()).send().await.unwrap();
        assert_eq!(found.dhcp_options().len(), 1);
        let by_id = ec2.describe_dhcp_options().dhcp_options_ids(&id).send().await.unwrap();
        assert_eq!(by_id.dhcp_options()[0].dhcp_configurations()[0].key(), Some("domain-name"));
        let by_key = ec2
            .describe_dhcp_options()
            .filters(Filter::builder().name("key").values("domain-name").build())
            .dhcp_options_ids(&id)
            .send()
            .await
            .unwrap();
        assert_eq!(by_key.dhcp_options().len(), 1);
        ec2.delete_dhcp_options().dhcp_options_id(&id).send().await.unwrap();
    }
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn workshop(root: &std::path::Path, name: &str, lab: &str) -> labrun_lab::Workshop {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("1-bench")).unwrap();
    std::fs::write(dir.join("workshop.yaml"), "workshop: bench\n").unwrap();
    std::fs::write(dir.join("1-bench/lab.yaml"), lab).unwrap();
    labrun_lab::load(&dir).unwrap().workshop
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let endpoint = labrun_harness::emulator::for_tests().endpoint.clone();
    let account = "777777777777";
    let dir = tempfile::tempdir().unwrap();
    let variants = [
        ("typed, cleanup: none (no ledger entries)", workshop(dir.path(), "typed", &chapter("none")), false),
        ("typed, cleanup: auto (intents and undos fsync'd)", workshop(dir.path(), "recorded", &chapter("auto")), false),
        ("modelled (DHCP options via the model-driven protocol path)", workshop(dir.path(), "modelled", &modelled_chapter()), true),
    ];

    let backend = Arc::new(AwsBackend::connect(Connect::emulator(&endpoint, "ap-southeast-1", Some(account))).await.unwrap());
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("ap-southeast-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(aws_credential_types::Credentials::from_keys(account, "test", None))
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&config);

    // Warm both paths (EC2 loads lazily in LocalStack; connections are pooled).
    direct(&ec2, 999).await;
    direct_modelled(&ec2, 999).await;
    println!("executor: 20 EC2 calls against LocalStack (median of {ROUNDS}, alternating with the direct program)");
    for (n, (label, w, modelled)) in variants.iter().enumerate() {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for run in 0..ROUNDS {
            let ledger = Arc::new(Ledger::open(&dir.path().join(format!("bench-{n}-{run}")), backend.target()).unwrap());
            let engine = Engine::new(backend.clone(), Some(ledger), Arc::new(Quiet), format!("r{n}x{run}"));
            let t = Instant::now();
            let r = engine.chapter(w, &w.chapters[0], Mode::Run, Role::Addressed, Reporting::Silent).await;
            ours.push(t.elapsed());
            assert!(!r.failed(), "{r:#?}");
            if !modelled {
                // What `cleanup: auto` recorded is undone outside the timing.
                let d = engine.down("bench", None).await;
                assert!(d.errors.is_empty(), "{d:?}");
            }
            let t = Instant::now();
            if *modelled {
                direct_modelled(&ec2, run + 100 * n).await;
            } else {
                direct(&ec2, run + 100 * n).await;
            }
            theirs.push(t.elapsed());
        }
        let (a, b) = (median(theirs), median(ours));
        println!("  {label}");
        println!("    baseline: direct SDK program     {a:>8.1} ms");
        println!("    labrun engine                    {b:>8.1} ms   ({:+.1}% vs direct; target within 10%)", (b / a - 1.0) * 100.0);
    }
}
