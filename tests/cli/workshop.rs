//! The seed workshop on the emulator: check mode against an environment built without
//! labrun (as a learner would in the console), with single mistakes; the reachability check
//! before and after chapters 3.2.1/3.2.2; and `down` after the whole workshop.

use crate::common::*;
use labrun_exec::Backend;
use labrun_harness::inventory;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mistake {
    None,
    DnsHostnamesOff,
    Ec2messagesEndpointMissing,
    EndpointSgWithout443,
    WindowsInPublicSubnet,
    RoleWithoutSsmPolicy,
}

fn tags(kind: &str, name: &str) -> Value {
    json!([{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}])
}

/// Builds chapters 2 and 3.2 with direct API calls, following the 2024 console text (the
/// Windows group loses its default egress rule), with at most one mistake.
async fn build_by_hand(b: &Arc<dyn Backend>, mistake: Mistake) {
    let https = |cidr: &str| json!([{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": cidr}]}]);
    let all_out = json!([{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]);
    let vpc =
        call(b, "ec2:CreateVpc", json!({"CidrBlock": "10.10.0.0/16", "TagSpecifications": tags("vpc", "Lab VPC")})).await["Vpc"]["VpcId"]
            .clone();
    let az = "ap-southeast-1a";
    let public = call(b, "ec2:CreateSubnet", json!({"VpcId": vpc, "CidrBlock": "10.10.1.0/24", "AvailabilityZone": az, "TagSpecifications": tags("subnet", "Lab Public Subnet")})).await["Subnet"]["SubnetId"].clone();
    call(b, "ec2:ModifySubnetAttribute", json!({"SubnetId": public, "MapPublicIpOnLaunch": {"Value": true}})).await;
    let private = call(b, "ec2:CreateSubnet", json!({"VpcId": vpc, "CidrBlock": "10.10.2.0/24", "AvailabilityZone": az, "TagSpecifications": tags("subnet", "Lab Private Subnet")})).await["Subnet"]["SubnetId"].clone();
    let igw = call(b, "ec2:CreateInternetGateway", json!({"TagSpecifications": tags("internet-gateway", "Lab IGW")})).await["InternetGateway"]["InternetGatewayId"].clone();
    call(b, "ec2:AttachInternetGateway", json!({"InternetGatewayId": igw, "VpcId": vpc})).await;
    let rtb = call(b, "ec2:CreateRouteTable", json!({"VpcId": vpc, "TagSpecifications": tags("route-table", "Lab Publicrtb")})).await["RouteTable"]["RouteTableId"].clone();
    call(b, "ec2:CreateRoute", json!({"RouteTableId": rtb, "DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw})).await;
    call(b, "ec2:AssociateRouteTable", json!({"RouteTableId": rtb, "SubnetId": public})).await;
    let sg = |name: &str| json!({"GroupName": name, "Description": name, "VpcId": vpc});
    let sg_linux = call(b, "ec2:CreateSecurityGroup", sg("SG Public Linux Instance")).await["GroupId"].clone();
    let sg_windows = call(b, "ec2:CreateSecurityGroup", sg("SG Private Windows Instance")).await["GroupId"].clone();
    call(b, "ec2:AuthorizeSecurityGroupEgress", json!({"GroupId": sg_windows, "IpPermissions": https("10.10.0.0/16")})).await;
    call(b, "ec2:RevokeSecurityGroupEgress", json!({"GroupId": sg_windows, "IpPermissions": all_out})).await;
    let sg_endpoint = call(b, "ec2:CreateSecurityGroup", sg("SG VPC Endpoint")).await["GroupId"].clone();
    call(b, "ec2:RevokeSecurityGroupEgress", json!({"GroupId": sg_endpoint, "IpPermissions": all_out})).await;
    if mistake != Mistake::EndpointSgWithout443 {
        call(b, "ec2:AuthorizeSecurityGroupIngress", json!({"GroupId": sg_endpoint, "IpPermissions": https("10.10.0.0/16")})).await;
    }
    call(b, "ec2:CreateKeyPair", json!({"KeyName": "LabKeypair"})).await;
    let linux_ami = call(
        b,
        "ssm:GetParameter",
        json!({"Name": "/aws/service/ami-amazon-linux-latest/amzn2-ami-kernel-5.10-hvm-x86_64-gp2"}),
    )
    .await["Parameter"]["Value"]
        .clone();
    call(b, "ec2:RunInstances", json!({"ImageId": linux_ami, "InstanceType": "t2.micro", "SubnetId": public, "SecurityGroupIds": [sg_linux], "KeyName": "LabKeypair", "TagSpecifications": tags("instance", "Public Linux Instance")})).await;
    let images = call(
        b,
        "ec2:DescribeImages",
        json!({"Owners": ["amazon"], "Filters": [{"Name": "name", "Values": ["Windows_Server-2016-English-Full-Base-*"]}]}),
    )
    .await;
    let windows_subnet = if mistake == Mistake::WindowsInPublicSubnet { public.clone() } else { private.clone() };
    let windows = call(b, "ec2:RunInstances", json!({"ImageId": images["Images"][0]["ImageId"], "InstanceType": "t2.micro", "SubnetId": windows_subnet, "SecurityGroupIds": [sg_windows], "KeyName": "LabKeypair", "TagSpecifications": tags("instance", "Private Windows Instance")})).await["Instances"][0]["InstanceId"].clone();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    call(b, "iam:CreateRole", json!({"RoleName": "SSM-Role", "AssumeRolePolicyDocument": trust})).await;
    if mistake != Mistake::RoleWithoutSsmPolicy {
        call(
            b,
            "iam:AttachRolePolicy",
            json!({"RoleName": "SSM-Role", "PolicyArn": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"}),
        )
        .await;
    }
    call(b, "iam:CreateInstanceProfile", json!({"InstanceProfileName": "SSM-Role"})).await;
    call(b, "iam:AddRoleToInstanceProfile", json!({"InstanceProfileName": "SSM-Role", "RoleName": "SSM-Role"})).await;
    if mistake != Mistake::DnsHostnamesOff {
        call(b, "ec2:ModifyVpcAttribute", json!({"VpcId": vpc, "EnableDnsHostnames": {"Value": true}})).await;
    }
    for (svc, name) in [("ssm", "SSM"), ("ssmmessages", "SSMMESSAGES"), ("ec2messages", "EC2MESSAGES")] {
        if svc == "ec2messages" && mistake == Mistake::Ec2messagesEndpointMissing {
            continue;
        }
        call(b, "ec2:CreateVpcEndpoint", json!({"VpcId": vpc, "ServiceName": format!("com.amazonaws.ap-southeast-1.{svc}"), "VpcEndpointType": "Interface", "SubnetIds": [private], "SecurityGroupIds": [sg_endpoint], "PrivateDnsEnabled": true, "TagSpecifications": tags("vpc-endpoint", name)})).await;
    }
    call(b, "ec2:AssociateIamInstanceProfile", json!({"InstanceId": windows, "IamInstanceProfile": {"Name": "SSM-Role"}})).await;
}

/// `labrun check` of chapters 2 and 3.2 on a hand-built environment: (failed steps, output).
async fn check_by_hand(mistake: Mistake) -> (Vec<String>, String) {
    let labs = labs_copy();
    let acct = account();
    let b = direct(&acct).await;
    build_by_hand(&b, mistake).await;
    let mut failed = Vec::new();
    let mut out = String::new();
    for chapter in ["labs/2", "labs/3.2"] {
        let r = on_emulator(labs.path(), &acct, &["check", chapter]);
        assert!(r.code == 0 || r.code == 1, "{}", r.all());
        assert!(!r.stdout.contains("✔ pass  create-") && !r.all().contains("changes resources\n      ✔"), "check mode ran a mutating step");
        failed.extend(failed_steps(&r.stdout));
        out.push_str(&r.stdout);
    }
    (failed, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_mode_passes_on_an_environment_built_by_hand() {
    let (failed, out) = check_by_hand(Mistake::None).await;
    assert!(failed.is_empty(), "{out}");
    // Session Manager itself cannot be checked on the emulator: reported as gaps, not passes.
    assert!(out.contains("◌ gap   windows-managed-node"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_hostnames_off_is_caught() {
    let (failed, out) = check_by_hand(Mistake::DnsHostnamesOff).await;
    assert_eq!(failed, ["dns-hostnames-on", "windows-reaches-ssm"], "{out}");
    assert!(out.contains("EnableDnsHostnames.Value: expected true, found false"), "{out}");
    assert!(out.contains("✘ vpc-dns-hostnames [vpc-"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_endpoint_is_caught() {
    let (failed, out) = check_by_hand(Mistake::Ec2messagesEndpointMissing).await;
    assert_eq!(failed, ["endpoint-ec2messages", "windows-reaches-ssm"], "{out}");
    assert!(out.contains("✘ endpoint-ec2messages [vpc-"), "{out}");
    assert!(out.contains("no interface endpoint for com.amazonaws.ap-southeast-1.ec2messages"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_group_without_https_is_caught() {
    let (failed, out) = check_by_hand(Mistake::EndpointSgWithout443).await;
    assert_eq!(failed, ["sg-endpoint", "windows-reaches-ssm"], "{out}");
    assert!(out.contains("✘ endpoint-sg-allows-https [sg-"), "{out}");
    assert!(out.contains("hint: SG VPC Endpoint → Inbound rules → HTTPS from 10.10.0.0/16"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_in_the_public_subnet_is_caught() {
    let (failed, out) = check_by_hand(Mistake::WindowsInPublicSubnet).await;
    assert!(failed.starts_with(&["windows-instance".to_string()]), "{out}");
    assert!(out.contains("Reservations[0].Instances[0].SubnetId: expected \"subnet-"), "{out}");
    assert!(out.contains("Reservations[0].Instances[0].PublicIpAddress: expected nothing"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_the_ssm_policy_is_caught() {
    let (failed, out) = check_by_hand(Mistake::RoleWithoutSsmPolicy).await;
    assert_eq!(failed, ["role-has-core-policy", "windows-reaches-ssm"], "{out}");
    assert!(out.contains("✘ role-has-ssm-policy [SSM-Role]"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reachability_fails_before_the_endpoints_and_passes_after() {
    let labs = labs_copy();
    let acct = account();
    let r = on_emulator(labs.path(), &acct, &["run", "labs/2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    // The learner attaches the role first, before any endpoint exists.
    let b = direct(&acct).await;
    let win = call(&b, "ec2:DescribeInstances", json!({"Filters": [{"Name": "tag:Name", "Values": ["Private Windows Instance"]}]})).await;
    let id = win["Reservations"][0]["Instances"][0]["InstanceId"].clone();
    call(&b, "ec2:AssociateIamInstanceProfile", json!({"InstanceId": id, "IamInstanceProfile": {"Name": "SSM-Role"}})).await;
    let r = on_emulator(labs.path(), &acct, &["check", "labs/3.2.3"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(failed_steps(&r.stdout), ["windows-reaches-ssm"]);
    for condition in ["✘ endpoint-ssm", "✘ endpoint-ssmmessages", "✘ endpoint-ec2messages", "✘ vpc-dns-hostnames"] {
        assert!(r.stdout.contains(condition), "{condition}: {}", r.stdout);
    }
    let r = on_emulator(labs.path(), &acct, &["run", "labs/3.2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = on_emulator(labs.path(), &acct, &["check", "labs/3.2.3"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("✔ pass  windows-reaches-ssm"), "{}", r.stdout);
    on_emulator(labs.path(), &acct, &["down", "labs/"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_after_the_whole_workshop_leaves_the_account_as_found() {
    let labs = labs_copy();
    let acct = account();
    let b = direct(&acct).await;
    let before = inventory::take(b.as_ref(), &[]).await.unwrap();
    for chapter in ["labs/3.1", "labs/4", "labs/5"] {
        let r = on_emulator(labs.path(), &acct, &["run", chapter]);
        assert_eq!(r.code, 0, "{chapter}: {}", r.all());
    }
    let built = inventory::take(b.as_ref(), &[]).await.unwrap();
    let made = inventory::leaked(&before, &built);
    for kind in [
        "vpc ",
        "instance ",
        "vpc-endpoint ",
        "iam-role SSM-Role",
        "iam-user Portfwd",
        "bucket lab-fcj-bucket-",
        "ssm-document SSM-SessionManagerRunShell",
    ] {
        assert!(made.iter().any(|m| m.starts_with(kind)), "{kind} not built: {made:?}");
    }
    let r = on_emulator(labs.path(), &acct, &["down", "labs/"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let after = inventory::take(b.as_ref(), &[]).await.unwrap();
    assert_eq!(inventory::leaked(&before, &after), Vec::<String>::new());
}

#[test]
fn labrun_test_passes_every_chapter_of_the_workshop() {
    let labs = labs_copy();
    let mut c = labrun();
    c.current_dir(labs.path()).args([
        "test",
        "labs/",
        "--jobs",
        "2",
        "--endpoint",
        &endpoint(),
        "--report",
        "junit",
        "junit.xml",
        "--report",
        "json",
        "test.json",
    ]);
    let r = run(&mut c);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("test: 19 passed, 0 failed (7 gap(s) need real AWS)"), "{}", r.stdout);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(labs.path().join("test.json")).unwrap()).unwrap();
    let gaps: Vec<&str> =
        report["chapters"].as_array().unwrap().iter().flat_map(|c| c["gaps"].as_array().unwrap()).filter_map(|g| g.as_str()).collect();
    assert!(gaps.iter().any(|g| g.starts_with("windows-managed-node")), "{gaps:?}");
    let junit = std::fs::read_to_string(labs.path().join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 19, "{junit}");
}

#[test]
fn a_whole_workshop_check_leaves_the_teardown_chapter_out() {
    let labs = labs_copy();
    let acct = account();
    let r = on_emulator(labs.path(), &acct, &["check", "labs/"]);
    assert_eq!(r.code, 1, "nothing is built: {}", r.all());
    assert!(r.stdout.contains("── 6 Clean up resources · left out: a teardown, run it with `labrun labs/6`"), "{}", r.stdout);
    assert!(!r.stdout.contains("── 6 Clean up resources · checking"), "{}", r.stdout);
    // Addressed directly, it is checked: on an empty account everything is already gone.
    let r = on_emulator(labs.path(), &acct, &["check", "labs/6"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("✔ pass  vpc-gone"), "{}", r.stdout);
}
