//! The action catalog: every operation a lab may call, its parameters (named as in the AWS API
//! reference), whether it only reads, how labrun tags what it creates, and how to undo it.
//!
//! This crate knows shapes but links no SDK; `labrun-aws` binds each entry to an SDK call, and
//! a test there checks that both sides name the same operations and parameters.
//!
//! The table below is the curated part. Every other operation of the embedded service models
//! (`labrun-models`) is a catalog operation too: [`operation`] builds it from the model on first
//! use (`derive.rs`), and merges each curated entry with its model, so that validation sees the
//! model's full parameter list while the typed bindings keep reading the curated ones (`bound`).
//!
//! Undo parameters are JMESPath expressions over `{request, response, before}`, where `before`
//! is the response of the `capture` call made just before a `restore`-style change.

use crate::vocab::kind;

/// Parameter type, as far as validation and the JSON Schema need it.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    Bool,
    /// A whole number (the models' `integer` and `long`).
    Int,
    /// Any number (the models' `float` and `double`).
    Float,
    /// A date and time: an ISO 8601 string, or seconds since the epoch.
    Timestamp,
    /// Bytes, written as a base64 string.
    Blob,
    /// A map from keys of the first type to values of the second.
    Map(&'static Ty, &'static Ty),
    /// Anything: an open document, or where a recursive shape was cut.
    Any,
    /// A JSON document: given as a mapping (labrun serialises it) or as a JSON string.
    Doc,
    /// A string-to-list-of-strings map (SSM session parameters).
    StrListMap,
    List(&'static Ty),
    Struct(&'static [Param]),
    Enum(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

const fn p(name: &'static str, ty: Ty) -> Param {
    Param { name, ty, required: false }
}
const fn req(name: &'static str, ty: Ty) -> Param {
    Param { name, ty, required: true }
}

/// How labrun marks a created resource with its `labrun:*` tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagging {
    None,
    /// EC2 `TagSpecifications` with this resource type.
    TagSpecifications(&'static str),
    /// IAM / SSM `Tags: [{Key, Value}]`.
    Tags,
    /// S3: a `PutBucketTagging` right after the create.
    BucketTagging,
    /// A list of tag structures in `member`, whose key and value members are named `key` and
    /// `value` (`Tags: [{Key, Value}]`, ECS `tags: [{key, value}]`, KMS `Tags: [{TagKey, TagValue}]`).
    List {
        member: &'static str,
        key: &'static str,
        value: &'static str,
    },
    /// A string map in `member` (Lambda `Tags: {k: v}`, SQS `tags`).
    Map(&'static str),
}

/// How `labrun down` reverses a successful call.
#[derive(Debug, Clone, Copy)]
pub enum Undo {
    /// Nothing to undo (reads, or changes with no inverse).
    None,
    /// Call `op` with parameters computed by the JMESPath `params`.
    Call { op: &'static str, params: &'static str },
    /// Read the old value with `capture` first, then on `down` call `op` to put it back.
    Restore { capture: &'static str, capture_params: &'static str, op: &'static str, params: &'static str },
}

/// How to find what an attempt made when its answer was lost (the create may have happened).
/// Every JMESPath here is data, so `down` can resolve a write-ahead intent without the lab.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    /// A read-only operation that finds the resource.
    pub op: &'static str,
    /// JMESPath over `{request, run, step}` giving its parameters (`run` and `step` are the
    /// values of the `labrun:run` and `labrun:step` tags the create carried).
    pub params: &'static str,
    /// JMESPath over the read's response giving the candidate items (a list).
    pub items: &'static str,
    /// `(item field, request field)` pairs that must be equal for an item to be ours.
    pub matching: &'static [(&'static str, &'static str)],
    /// Keep only items whose `Tags` carry this run's `labrun:run` and `labrun:step` values.
    pub tagged: bool,
    /// JMESPath over the list of matching items giving the create's response.
    pub response: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// `ec2:CreateVpc`
    pub name: &'static str,
    pub read_only: bool,
    pub params: &'static [Param],
    pub tagging: Tagging,
    pub undo: Undo,
    /// Response fields that hold secrets (dotted paths); they are masked before anything sees them.
    pub secrets: &'static [&'static str],
    /// No emulator implements it: steps calling it are reported as gaps there.
    pub real_aws_only: bool,
    /// The operation is labrun's own (computed from several reads), not an AWS API.
    pub synthetic: bool,
    /// The request member that makes repeats of one create return the first result
    /// (`ClientToken`); labrun fills it once per step and keeps it across retries.
    pub client_token: Option<&'static str>,
    /// How to find the result of an attempt whose answer was lost, before trying again.
    pub lookup: Option<&'static Lookup>,
    /// Error codes that, after an attempt whose answer was lost, mean that attempt did it
    /// (`InvalidPermission.Duplicate`, `EntityAlreadyExists`, ...).
    pub already: &'static [&'static str],
    /// The parameters `labrun-aws`'s typed SDK binding reads: the curated table's names, as
    /// [`operation`] returns it (None in the raw [`OPERATIONS`] table and for operations built
    /// from the model alone). A step passing only these may use the binding; any other goes
    /// through the model-driven protocol path.
    pub bound: Option<&'static [&'static str]>,
    /// `undo` is `Undo::None` on purpose: nothing needs undoing (reads, deletes and other
    /// removals, calls that leave nothing behind, and every curated entry). When false and there
    /// is no undo, a step calling it must say what to do in `cleanup:`.
    pub nothing_to_undo: bool,
}

impl Operation {
    pub fn service(&self) -> &'static str {
        self.name.split_once(':').map_or("", |(s, _)| s)
    }
    pub fn action(&self) -> &'static str {
        self.name.split_once(':').map_or(self.name, |(_, a)| a)
    }
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.params.iter().find(|p| p.name == name)
    }
    /// `aws ec2 create-vpc`, as the AWS CLI spells it.
    pub fn cli_command(&self) -> String {
        let service = match self.service() {
            "s3" => "s3api",
            s => s,
        };
        format!("aws {service} {}", kebab(self.action()))
    }
}

/// `DescribeVpcEndpoints` → `describe-vpc-endpoints`, as the AWS CLI names commands and flags.
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev_lower = chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit();
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev_lower || (next_lower && chars[i - 1].is_uppercase()) {
                out.push('-');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

// Shapes shared by many operations.
const STRS: Ty = Ty::List(&Ty::Str);
const FILTERS: Ty = Ty::List(&Ty::Struct(&[req("Name", Ty::Str), p("Values", STRS)]));
const TAG: Ty = Ty::Struct(&[req("Key", Ty::Str), p("Value", Ty::Str)]);
const TAGS: Ty = Ty::List(&TAG);
const TAG_SPECS: Ty = Ty::List(&Ty::Struct(&[p("ResourceType", Ty::Str), p("Tags", TAGS)]));
const ATTR_BOOL: Ty = Ty::Struct(&[p("Value", Ty::Bool)]);
const IP_PERMISSIONS: Ty = Ty::List(&Ty::Struct(&[
    p("IpProtocol", Ty::Str),
    p("FromPort", Ty::Int),
    p("ToPort", Ty::Int),
    p("IpRanges", Ty::List(&Ty::Struct(&[p("CidrIp", Ty::Str), p("Description", Ty::Str)]))),
    p("PrefixListIds", Ty::List(&Ty::Struct(&[p("PrefixListId", Ty::Str), p("Description", Ty::Str)]))),
    p("UserIdGroupPairs", Ty::List(&Ty::Struct(&[p("GroupId", Ty::Str), p("Description", Ty::Str)]))),
]));
const PROFILE_SPEC: Ty = Ty::Struct(&[p("Name", Ty::Str), p("Arn", Ty::Str)]);
const SSM_FILTERS: Ty = Ty::List(&Ty::Struct(&[req("Key", Ty::Str), p("Values", STRS)]));
const SESSION_FILTERS: Ty = Ty::List(&Ty::Struct(&[req("key", Ty::Str), req("value", Ty::Str)]));

const fn read(name: &'static str, params: &'static [Param]) -> Operation {
    Operation {
        name,
        read_only: true,
        params,
        tagging: Tagging::None,
        undo: Undo::None,
        secrets: &[],
        real_aws_only: false,
        synthetic: false,
        client_token: None,
        lookup: None,
        already: &[],
        bound: None,
        nothing_to_undo: true,
    }
}
const fn write(name: &'static str, params: &'static [Param], tagging: Tagging, undo: Undo) -> Operation {
    Operation { read_only: false, tagging, undo, ..read(name, params) }
}
/// A create whose lost answer is resolved by `lookup`, and whose repeat may answer `already`.
const fn found_by(op: Operation, lookup: &'static Lookup, already: &'static [&'static str]) -> Operation {
    Operation { lookup: Some(lookup), already, ..op }
}
/// A change that is safe to repeat, whose repeat may answer one of `already`.
const fn repeatable(op: Operation, already: &'static [&'static str]) -> Operation {
    Operation { already, ..op }
}

/// EC2 resources labrun created are found again by the `labrun:run` and `labrun:step` tags.
const fn ec2_lookup(op: &'static str, items: &'static str, response: &'static str) -> Lookup {
    Lookup { op, params: EC2_TAG_FILTERS, items, matching: &[], tagged: true, response }
}
const EC2_TAG_FILTERS: &str = "{Filters: [{Name: 'tag:labrun:run', Values: [run]}, {Name: 'tag:labrun:step', Values: [step]}]}";
const VPC_LOOKUP: Lookup = ec2_lookup("ec2:DescribeVpcs", "Vpcs", "{Vpc: @[0]}");
const SUBNET_LOOKUP: Lookup = ec2_lookup("ec2:DescribeSubnets", "Subnets", "{Subnet: @[0]}");
const IGW_LOOKUP: Lookup = ec2_lookup("ec2:DescribeInternetGateways", "InternetGateways", "{InternetGateway: @[0]}");
const ROUTE_TABLE_LOOKUP: Lookup = ec2_lookup("ec2:DescribeRouteTables", "RouteTables", "{RouteTable: @[0]}");
const SG_LOOKUP: Lookup = ec2_lookup("ec2:DescribeSecurityGroups", "SecurityGroups", "{GroupId: @[0].GroupId}");
const KEY_PAIR_LOOKUP: Lookup = ec2_lookup(
    "ec2:DescribeKeyPairs",
    "KeyPairs",
    "{KeyName: @[0].KeyName, KeyPairId: @[0].KeyPairId, KeyFingerprint: @[0].KeyFingerprint}",
);
const ENDPOINT_LOOKUP: Lookup = ec2_lookup("ec2:DescribeVpcEndpoints", "VpcEndpoints", "{VpcEndpoint: @[0]}");
const INSTANCES_LOOKUP: Lookup = Lookup {
    op: "ec2:DescribeInstances",
    params: "{Filters: [{Name: 'tag:labrun:run', Values: [run]}, {Name: 'tag:labrun:step', Values: [step]}, \
             {Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped']}]}",
    items: "Reservations[].Instances[]",
    matching: &[],
    tagged: true,
    response: "{Instances: @}",
};
const ASSOCIATION_LOOKUP: Lookup = Lookup {
    op: "ec2:DescribeRouteTables",
    params: "{RouteTableIds: [request.RouteTableId]}",
    items: "RouteTables[].Associations[]",
    matching: &[("SubnetId", "SubnetId")],
    tagged: false,
    response: "{AssociationId: @[0].RouteTableAssociationId, AssociationState: @[0].AssociationState}",
};
const PROFILE_ASSOCIATION_LOOKUP: Lookup = Lookup {
    op: "ec2:DescribeIamInstanceProfileAssociations",
    params: "{Filters: [{Name: 'instance-id', Values: [request.InstanceId]}, {Name: 'state', Values: ['associating', 'associated']}]}",
    items: "IamInstanceProfileAssociations",
    matching: &[],
    tagged: false,
    response: "{IamInstanceProfileAssociation: @[0]}",
};
/// IAM names are unique: the entity is read back by name and must carry this run's tags.
const fn iam_lookup(op: &'static str, params: &'static str, items: &'static str, response: &'static str) -> Lookup {
    Lookup { op, params, items, matching: &[], tagged: true, response }
}
const ROLE_LOOKUP: Lookup = iam_lookup("iam:GetRole", "{RoleName: request.RoleName}", "[Role]", "{Role: @[0]}");
const PROFILE_LOOKUP: Lookup = iam_lookup(
    "iam:GetInstanceProfile",
    "{InstanceProfileName: request.InstanceProfileName}",
    "[InstanceProfile]",
    "{InstanceProfile: @[0]}",
);
const USER_LOOKUP: Lookup = iam_lookup("iam:GetUser", "{UserName: request.UserName}", "[User]", "{User: @[0]}");
/// The secret of a key whose answer was lost is gone for good; the key itself is found.
const ACCESS_KEY_LOOKUP: Lookup = Lookup {
    op: "iam:ListAccessKeys",
    params: "{UserName: request.UserName}",
    items: "AccessKeyMetadata",
    matching: &[],
    tagged: false,
    response: "{AccessKey: @[0]}",
};
/// SSM documents carry no tags in GetDocument; the name is unique per account.
const DOCUMENT_LOOKUP: Lookup = Lookup {
    op: "ssm:GetDocument",
    params: "{Name: request.Name, DocumentVersion: '$LATEST'}",
    items: "[@]",
    matching: &[],
    tagged: false,
    response: "{DocumentDescription: {Name: @[0].Name, DocumentVersion: @[0].DocumentVersion, Status: @[0].Status}}",
};
const fn undo(op: &'static str, params: &'static str) -> Undo {
    Undo::Call { op, params }
}
const NONE: Tagging = Tagging::None;
const fn ec2_tags(resource: &'static str) -> Tagging {
    Tagging::TagSpecifications(resource)
}

/// The curated operations, as written: labrun's knowledge of each (tags, undo, lookup, ...) and
/// the parameters its typed binding reads. [`operation`] returns each merged with its service
/// model (full parameter list, `bound` set); [`curated`] iterates those. Adding one: a line here
/// and a binding in `labrun-aws`.
pub static OPERATIONS: &[Operation] = &[
    // ---- EC2: VPC and attributes
    found_by(
        write(
            "ec2:CreateVpc",
            &[
                req("CidrBlock", Ty::Str),
                p("InstanceTenancy", Ty::Enum(&["default", "dedicated", "host"])),
                p("TagSpecifications", TAG_SPECS),
            ],
            ec2_tags(kind::VPC),
            undo("ec2:DeleteVpc", "{VpcId: response.Vpc.VpcId}"),
        ),
        &VPC_LOOKUP,
        &[],
    ),
    write("ec2:DeleteVpc", &[req("VpcId", Ty::Str)], NONE, Undo::None),
    read("ec2:DescribeVpcs", &[p("VpcIds", STRS), p("Filters", FILTERS)]),
    write(
        "ec2:ModifyVpcAttribute",
        &[req("VpcId", Ty::Str), p("EnableDnsHostnames", ATTR_BOOL), p("EnableDnsSupport", ATTR_BOOL)],
        NONE,
        Undo::Restore {
            capture: "ec2:DescribeVpcAttribute",
            capture_params: "{VpcId: request.VpcId, Attribute: (request.EnableDnsHostnames && 'enableDnsHostnames') || 'enableDnsSupport'}",
            op: "ec2:ModifyVpcAttribute",
            params: "{VpcId: request.VpcId, EnableDnsHostnames: before.EnableDnsHostnames, EnableDnsSupport: before.EnableDnsSupport}",
        },
    ),
    read(
        "ec2:DescribeVpcAttribute",
        &[
            req("VpcId", Ty::Str),
            req("Attribute", Ty::Enum(&["enableDnsSupport", "enableDnsHostnames", "enableNetworkAddressUsageMetrics"])),
        ],
    ),
    // ---- EC2: subnets, gateways, routes
    found_by(
        write(
            "ec2:CreateSubnet",
            &[req("VpcId", Ty::Str), p("CidrBlock", Ty::Str), p("AvailabilityZone", Ty::Str), p("TagSpecifications", TAG_SPECS)],
            ec2_tags(kind::SUBNET),
            undo("ec2:DeleteSubnet", "{SubnetId: response.Subnet.SubnetId}"),
        ),
        &SUBNET_LOOKUP,
        &[],
    ),
    write("ec2:DeleteSubnet", &[req("SubnetId", Ty::Str)], NONE, Undo::None),
    read("ec2:DescribeSubnets", &[p("SubnetIds", STRS), p("Filters", FILTERS)]),
    write(
        "ec2:ModifySubnetAttribute",
        &[req("SubnetId", Ty::Str), p("MapPublicIpOnLaunch", ATTR_BOOL)],
        NONE,
        Undo::Restore {
            capture: "ec2:DescribeSubnets",
            capture_params: "{SubnetIds: [request.SubnetId]}",
            op: "ec2:ModifySubnetAttribute",
            params: "{SubnetId: request.SubnetId, MapPublicIpOnLaunch: {Value: before.Subnets[0].MapPublicIpOnLaunch}}",
        },
    ),
    found_by(
        write(
            "ec2:CreateInternetGateway",
            &[p("TagSpecifications", TAG_SPECS)],
            ec2_tags(kind::INTERNET_GATEWAY),
            undo("ec2:DeleteInternetGateway", "{InternetGatewayId: response.InternetGateway.InternetGatewayId}"),
        ),
        &IGW_LOOKUP,
        &[],
    ),
    write("ec2:DeleteInternetGateway", &[req("InternetGatewayId", Ty::Str)], NONE, Undo::None),
    repeatable(
        write(
            "ec2:AttachInternetGateway",
            &[req("InternetGatewayId", Ty::Str), req("VpcId", Ty::Str)],
            NONE,
            undo("ec2:DetachInternetGateway", "{InternetGatewayId: request.InternetGatewayId, VpcId: request.VpcId}"),
        ),
        &["Resource.AlreadyAssociated"],
    ),
    repeatable(
        write("ec2:DetachInternetGateway", &[req("InternetGatewayId", Ty::Str), req("VpcId", Ty::Str)], NONE, Undo::None),
        &["Gateway.NotAttached"],
    ),
    read("ec2:DescribeInternetGateways", &[p("InternetGatewayIds", STRS), p("Filters", FILTERS)]),
    // The model marks CreateRouteTable's ClientToken as an idempotency token (labrun-models'
    // test compares); the lookup stays for emulators that ignore tokens.
    Operation {
        client_token: Some("ClientToken"),
        ..found_by(
            write(
                "ec2:CreateRouteTable",
                &[req("VpcId", Ty::Str), p("TagSpecifications", TAG_SPECS), p("ClientToken", Ty::Str)],
                ec2_tags(kind::ROUTE_TABLE),
                undo("ec2:DeleteRouteTable", "{RouteTableId: response.RouteTable.RouteTableId}"),
            ),
            &ROUTE_TABLE_LOOKUP,
            &[],
        )
    },
    write("ec2:DeleteRouteTable", &[req("RouteTableId", Ty::Str)], NONE, Undo::None),
    read("ec2:DescribeRouteTables", &[p("RouteTableIds", STRS), p("Filters", FILTERS)]),
    repeatable(
        write(
            "ec2:CreateRoute",
            &[req("RouteTableId", Ty::Str), p("DestinationCidrBlock", Ty::Str), p("GatewayId", Ty::Str)],
            NONE,
            undo("ec2:DeleteRoute", "{RouteTableId: request.RouteTableId, DestinationCidrBlock: request.DestinationCidrBlock}"),
        ),
        &["RouteAlreadyExists"],
    ),
    write("ec2:DeleteRoute", &[req("RouteTableId", Ty::Str), p("DestinationCidrBlock", Ty::Str)], NONE, Undo::None),
    found_by(
        write(
            "ec2:AssociateRouteTable",
            &[req("RouteTableId", Ty::Str), p("SubnetId", Ty::Str), p("GatewayId", Ty::Str)],
            NONE,
            undo("ec2:DisassociateRouteTable", "{AssociationId: response.AssociationId}"),
        ),
        &ASSOCIATION_LOOKUP,
        &["Resource.AlreadyAssociated"],
    ),
    write("ec2:DisassociateRouteTable", &[req("AssociationId", Ty::Str)], NONE, Undo::None),
    // ---- EC2: security groups
    found_by(
        write(
            "ec2:CreateSecurityGroup",
            &[req("GroupName", Ty::Str), req("Description", Ty::Str), p("VpcId", Ty::Str), p("TagSpecifications", TAG_SPECS)],
            ec2_tags(kind::SECURITY_GROUP),
            undo("ec2:DeleteSecurityGroup", "{GroupId: response.GroupId}"),
        ),
        &SG_LOOKUP,
        &["InvalidGroup.Duplicate"],
    ),
    write("ec2:DeleteSecurityGroup", &[p("GroupId", Ty::Str), p("GroupName", Ty::Str)], NONE, Undo::None),
    read("ec2:DescribeSecurityGroups", &[p("GroupIds", STRS), p("GroupNames", STRS), p("Filters", FILTERS)]),
    repeatable(
        write(
            "ec2:AuthorizeSecurityGroupIngress",
            &[req("GroupId", Ty::Str), req("IpPermissions", IP_PERMISSIONS)],
            NONE,
            undo("ec2:RevokeSecurityGroupIngress", "{GroupId: request.GroupId, IpPermissions: request.IpPermissions}"),
        ),
        &["InvalidPermission.Duplicate"],
    ),
    repeatable(
        write(
            "ec2:RevokeSecurityGroupIngress",
            &[req("GroupId", Ty::Str), req("IpPermissions", IP_PERMISSIONS)],
            NONE,
            undo("ec2:AuthorizeSecurityGroupIngress", "{GroupId: request.GroupId, IpPermissions: request.IpPermissions}"),
        ),
        &["InvalidPermission.NotFound"],
    ),
    repeatable(
        write(
            "ec2:AuthorizeSecurityGroupEgress",
            &[req("GroupId", Ty::Str), req("IpPermissions", IP_PERMISSIONS)],
            NONE,
            undo("ec2:RevokeSecurityGroupEgress", "{GroupId: request.GroupId, IpPermissions: request.IpPermissions}"),
        ),
        &["InvalidPermission.Duplicate"],
    ),
    repeatable(
        write(
            "ec2:RevokeSecurityGroupEgress",
            &[req("GroupId", Ty::Str), req("IpPermissions", IP_PERMISSIONS)],
            NONE,
            undo("ec2:AuthorizeSecurityGroupEgress", "{GroupId: request.GroupId, IpPermissions: request.IpPermissions}"),
        ),
        &["InvalidPermission.NotFound"],
    ),
    // ---- EC2: key pairs, images, instances
    Operation {
        secrets: &["KeyMaterial"],
        lookup: Some(&KEY_PAIR_LOOKUP),
        already: &["InvalidKeyPair.Duplicate"],
        ..write(
            "ec2:CreateKeyPair",
            &[req("KeyName", Ty::Str), p("KeyType", Ty::Enum(&["rsa", "ed25519"])), p("TagSpecifications", TAG_SPECS)],
            ec2_tags(kind::KEY_PAIR),
            undo("ec2:DeleteKeyPair", "{KeyName: request.KeyName}"),
        )
    },
    write("ec2:DeleteKeyPair", &[p("KeyName", Ty::Str), p("KeyPairId", Ty::Str)], NONE, Undo::None),
    read("ec2:DescribeKeyPairs", &[p("KeyNames", STRS), p("KeyPairIds", STRS), p("Filters", FILTERS)]),
    read("ec2:DescribeImages", &[p("ImageIds", STRS), p("Owners", STRS), p("Filters", FILTERS)]),
    Operation {
        client_token: Some("ClientToken"),
        lookup: Some(&INSTANCES_LOOKUP),
        ..write(
            "ec2:RunInstances",
            &[
                req("ImageId", Ty::Str),
                p("InstanceType", Ty::Str),
                p("MinCount", Ty::Int),
                p("MaxCount", Ty::Int),
                p("SubnetId", Ty::Str),
                p("SecurityGroupIds", STRS),
                p("KeyName", Ty::Str),
                p("IamInstanceProfile", PROFILE_SPEC),
                p("TagSpecifications", TAG_SPECS),
                p("ClientToken", Ty::Str),
            ],
            ec2_tags(kind::INSTANCE),
            undo("ec2:TerminateInstances", "{InstanceIds: response.Instances[].InstanceId}"),
        )
    },
    write("ec2:TerminateInstances", &[req("InstanceIds", STRS)], NONE, Undo::None),
    write("ec2:RebootInstances", &[req("InstanceIds", STRS)], NONE, Undo::None),
    read("ec2:DescribeInstances", &[p("InstanceIds", STRS), p("Filters", FILTERS)]),
    found_by(
        write(
            "ec2:AssociateIamInstanceProfile",
            &[req("InstanceId", Ty::Str), req("IamInstanceProfile", PROFILE_SPEC)],
            NONE,
            undo("ec2:DisassociateIamInstanceProfile", "{AssociationId: response.IamInstanceProfileAssociation.AssociationId}"),
        ),
        &PROFILE_ASSOCIATION_LOOKUP,
        &["IncorrectState"],
    ),
    write("ec2:DisassociateIamInstanceProfile", &[req("AssociationId", Ty::Str)], NONE, Undo::None),
    read("ec2:DescribeIamInstanceProfileAssociations", &[p("AssociationIds", STRS), p("Filters", FILTERS)]),
    // ---- EC2: endpoints, zones, tags
    Operation {
        client_token: Some("ClientToken"),
        lookup: Some(&ENDPOINT_LOOKUP),
        ..write(
            "ec2:CreateVpcEndpoint",
            &[
                req("VpcId", Ty::Str),
                req("ServiceName", Ty::Str),
                p("VpcEndpointType", Ty::Enum(&["Interface", "Gateway", "GatewayLoadBalancer"])),
                p("SubnetIds", STRS),
                p("SecurityGroupIds", STRS),
                p("RouteTableIds", STRS),
                p("PrivateDnsEnabled", Ty::Bool),
                p("PolicyDocument", Ty::Doc),
                p("TagSpecifications", TAG_SPECS),
                p("ClientToken", Ty::Str),
            ],
            ec2_tags(kind::VPC_ENDPOINT),
            undo("ec2:DeleteVpcEndpoints", "{VpcEndpointIds: [response.VpcEndpoint.VpcEndpointId]}"),
        )
    },
    write("ec2:DeleteVpcEndpoints", &[req("VpcEndpointIds", STRS)], NONE, Undo::None),
    read("ec2:DescribeVpcEndpoints", &[p("VpcEndpointIds", STRS), p("Filters", FILTERS)]),
    read("ec2:DescribeAvailabilityZones", &[p("ZoneNames", STRS), p("Filters", FILTERS)]),
    write(
        "ec2:CreateTags",
        &[req("Resources", STRS), req("Tags", TAGS)],
        NONE,
        undo("ec2:DeleteTags", "{Resources: request.Resources, Tags: request.Tags}"),
    ),
    write("ec2:DeleteTags", &[req("Resources", STRS), p("Tags", TAGS)], NONE, Undo::None),
    read("ec2:DescribeTags", &[p("Filters", FILTERS)]),
    // ---- IAM
    found_by(
        write(
            "iam:CreateRole",
            &[
                req("RoleName", Ty::Str),
                req("AssumeRolePolicyDocument", Ty::Doc),
                p("Description", Ty::Str),
                p("Path", Ty::Str),
                p("Tags", TAGS),
            ],
            Tagging::Tags,
            undo("iam:DeleteRole", "{RoleName: request.RoleName}"),
        ),
        &ROLE_LOOKUP,
        &["EntityAlreadyExists"],
    ),
    write("iam:DeleteRole", &[req("RoleName", Ty::Str)], NONE, Undo::None),
    read("iam:GetRole", &[req("RoleName", Ty::Str)]),
    read("iam:ListRoles", &[p("PathPrefix", Ty::Str)]),
    write(
        "iam:AttachRolePolicy",
        &[req("RoleName", Ty::Str), req("PolicyArn", Ty::Str)],
        NONE,
        undo("iam:DetachRolePolicy", "{RoleName: request.RoleName, PolicyArn: request.PolicyArn}"),
    ),
    write("iam:DetachRolePolicy", &[req("RoleName", Ty::Str), req("PolicyArn", Ty::Str)], NONE, Undo::None),
    read("iam:ListAttachedRolePolicies", &[req("RoleName", Ty::Str)]),
    read("iam:ListRolePolicies", &[req("RoleName", Ty::Str)]),
    write("iam:DeleteRolePolicy", &[req("RoleName", Ty::Str), req("PolicyName", Ty::Str)], NONE, Undo::None),
    read("iam:ListRoleTags", &[req("RoleName", Ty::Str)]),
    read("iam:ListInstanceProfilesForRole", &[req("RoleName", Ty::Str)]),
    found_by(
        write(
            "iam:CreateInstanceProfile",
            &[req("InstanceProfileName", Ty::Str), p("Path", Ty::Str), p("Tags", TAGS)],
            Tagging::Tags,
            undo("iam:DeleteInstanceProfile", "{InstanceProfileName: request.InstanceProfileName}"),
        ),
        &PROFILE_LOOKUP,
        &["EntityAlreadyExists"],
    ),
    write("iam:DeleteInstanceProfile", &[req("InstanceProfileName", Ty::Str)], NONE, Undo::None),
    read("iam:GetInstanceProfile", &[req("InstanceProfileName", Ty::Str)]),
    read("iam:ListInstanceProfiles", &[p("PathPrefix", Ty::Str)]),
    repeatable(
        write(
            "iam:AddRoleToInstanceProfile",
            &[req("InstanceProfileName", Ty::Str), req("RoleName", Ty::Str)],
            NONE,
            undo("iam:RemoveRoleFromInstanceProfile", "{InstanceProfileName: request.InstanceProfileName, RoleName: request.RoleName}"),
        ),
        &["LimitExceeded"],
    ),
    write("iam:RemoveRoleFromInstanceProfile", &[req("InstanceProfileName", Ty::Str), req("RoleName", Ty::Str)], NONE, Undo::None),
    read("iam:ListInstanceProfileTags", &[req("InstanceProfileName", Ty::Str)]),
    found_by(
        write(
            "iam:CreateUser",
            &[req("UserName", Ty::Str), p("Path", Ty::Str), p("Tags", TAGS)],
            Tagging::Tags,
            undo("iam:DeleteUser", "{UserName: request.UserName}"),
        ),
        &USER_LOOKUP,
        &["EntityAlreadyExists"],
    ),
    write("iam:DeleteUser", &[req("UserName", Ty::Str)], NONE, Undo::None),
    read("iam:GetUser", &[p("UserName", Ty::Str)]),
    read("iam:ListUsers", &[p("PathPrefix", Ty::Str)]),
    write(
        "iam:AttachUserPolicy",
        &[req("UserName", Ty::Str), req("PolicyArn", Ty::Str)],
        NONE,
        undo("iam:DetachUserPolicy", "{UserName: request.UserName, PolicyArn: request.PolicyArn}"),
    ),
    write("iam:DetachUserPolicy", &[req("UserName", Ty::Str), req("PolicyArn", Ty::Str)], NONE, Undo::None),
    read("iam:ListAttachedUserPolicies", &[req("UserName", Ty::Str)]),
    read("iam:ListUserPolicies", &[req("UserName", Ty::Str)]),
    write("iam:DeleteUserPolicy", &[req("UserName", Ty::Str), req("PolicyName", Ty::Str)], NONE, Undo::None),
    read("iam:ListUserTags", &[req("UserName", Ty::Str)]),
    Operation {
        secrets: &["AccessKey.SecretAccessKey"],
        lookup: Some(&ACCESS_KEY_LOOKUP),
        ..write(
            "iam:CreateAccessKey",
            &[req("UserName", Ty::Str)],
            NONE,
            undo("iam:DeleteAccessKey", "{UserName: request.UserName, AccessKeyId: response.AccessKey.AccessKeyId}"),
        )
    },
    write("iam:DeleteAccessKey", &[req("UserName", Ty::Str), req("AccessKeyId", Ty::Str)], NONE, Undo::None),
    read("iam:ListAccessKeys", &[p("UserName", Ty::Str)]),
    read("iam:GetAccessKeyLastUsed", &[req("AccessKeyId", Ty::Str)]),
    // ---- S3
    repeatable(
        write(
            "s3:CreateBucket",
            &[req("Bucket", Ty::Str), p("CreateBucketConfiguration", Ty::Struct(&[p("LocationConstraint", Ty::Str)]))],
            Tagging::BucketTagging,
            undo("s3:DeleteBucket", "{Bucket: request.Bucket}"),
        ),
        &["BucketAlreadyOwnedByYou"],
    ),
    write("s3:DeleteBucket", &[req("Bucket", Ty::Str)], NONE, Undo::None),
    read("s3:HeadBucket", &[req("Bucket", Ty::Str)]),
    read("s3:ListBuckets", &[p("Prefix", Ty::Str)]),
    read("s3:GetBucketTagging", &[req("Bucket", Ty::Str)]),
    write("s3:PutBucketTagging", &[req("Bucket", Ty::Str), req("Tagging", Ty::Struct(&[req("TagSet", TAGS)]))], NONE, Undo::None),
    read("s3:ListObjectsV2", &[req("Bucket", Ty::Str), p("Prefix", Ty::Str), p("ContinuationToken", Ty::Str)]),
    read("s3:GetPublicAccessBlock", &[req("Bucket", Ty::Str)]),
    read("s3:GetBucketLocation", &[req("Bucket", Ty::Str)]),
    read("s3:GetBucketOwnershipControls", &[req("Bucket", Ty::Str)]),
    read("s3:GetBucketEncryption", &[req("Bucket", Ty::Str)]),
    write("s3:DeleteObject", &[req("Bucket", Ty::Str), req("Key", Ty::Str)], NONE, Undo::None),
    write(
        "s3:DeleteObjects",
        &[
            req("Bucket", Ty::Str),
            req(
                "Delete",
                Ty::Struct(&[req("Objects", Ty::List(&Ty::Struct(&[req("Key", Ty::Str), p("VersionId", Ty::Str)]))), p("Quiet", Ty::Bool)]),
            ),
        ],
        NONE,
        Undo::None,
    ),
    // `IfNoneMatch: "*"` makes a repeat answer PreconditionFailed instead of overwriting.
    repeatable(
        write(
            "s3:PutObject",
            &[req("Bucket", Ty::Str), req("Key", Ty::Str), p("Body", Ty::Str), p("ContentType", Ty::Str), p("IfNoneMatch", Ty::Str)],
            NONE,
            undo("s3:DeleteObject", "{Bucket: request.Bucket, Key: request.Key}"),
        ),
        &["PreconditionFailed"],
    ),
    // ---- SSM
    read("ssm:GetParameter", &[req("Name", Ty::Str), p("WithDecryption", Ty::Bool)]),
    // A create only: AWS refuses `Overwrite` together with `Tags`, and labrun always tags.
    repeatable(
        write(
            "ssm:PutParameter",
            &[
                req("Name", Ty::Str),
                req("Value", Ty::Str),
                p("Type", Ty::Enum(&["String", "StringList", "SecureString"])),
                p("Description", Ty::Str),
                p("Tags", TAGS),
            ],
            Tagging::Tags,
            undo("ssm:DeleteParameter", "{Name: request.Name}"),
        ),
        &["ParameterAlreadyExists"],
    ),
    write("ssm:DeleteParameter", &[req("Name", Ty::Str)], NONE, Undo::None),
    read(
        "ssm:DescribeParameters",
        &[p("ParameterFilters", Ty::List(&Ty::Struct(&[req("Key", Ty::Str), p("Option", Ty::Str), p("Values", STRS)])))],
    ),
    read(
        "ssm:ListTagsForResource",
        &[
            req(
                "ResourceType",
                Ty::Enum(&[
                    "Document",
                    "Parameter",
                    "ManagedInstance",
                    "MaintenanceWindow",
                    "PatchBaseline",
                    "OpsItem",
                    "OpsMetadata",
                    "Automation",
                    "Association",
                ]),
            ),
            req("ResourceId", Ty::Str),
        ],
    ),
    found_by(
        write(
            "ssm:CreateDocument",
            &[
                req("Name", Ty::Str),
                req("Content", Ty::Doc),
                p("DocumentType", Ty::Str),
                p("DocumentFormat", Ty::Enum(&["JSON", "YAML", "TEXT"])),
                p("Tags", TAGS),
            ],
            Tagging::Tags,
            undo("ssm:DeleteDocument", "{Name: request.Name}"),
        ),
        &DOCUMENT_LOOKUP,
        &["DocumentAlreadyExists"],
    ),
    found_by(
        write(
            "ssm:UpdateDocument",
            &[
                req("Name", Ty::Str),
                req("Content", Ty::Doc),
                p("DocumentVersion", Ty::Str),
                p("DocumentFormat", Ty::Enum(&["JSON", "YAML", "TEXT"])),
            ],
            NONE,
            Undo::None,
        ),
        &DOCUMENT_LOOKUP,
        &["DuplicateDocumentContent"],
    ),
    write("ssm:UpdateDocumentDefaultVersion", &[req("Name", Ty::Str), req("DocumentVersion", Ty::Str)], NONE, Undo::None),
    write("ssm:DeleteDocument", &[req("Name", Ty::Str)], NONE, Undo::None),
    read(
        "ssm:GetDocument",
        &[req("Name", Ty::Str), p("DocumentVersion", Ty::Str), p("DocumentFormat", Ty::Enum(&["JSON", "YAML", "TEXT"]))],
    ),
    read("ssm:ListDocuments", &[p("Filters", SSM_FILTERS)]),
    Operation { real_aws_only: true, ..read("ssm:DescribeInstanceInformation", &[p("Filters", SSM_FILTERS)]) },
    Operation {
        real_aws_only: true,
        secrets: &["TokenValue"],
        ..write(
            "ssm:StartSession",
            &[req("Target", Ty::Str), p("DocumentName", Ty::Str), p("Parameters", Ty::StrListMap)],
            NONE,
            undo("ssm:TerminateSession", "{SessionId: response.SessionId}"),
        )
    },
    Operation { real_aws_only: true, ..write("ssm:TerminateSession", &[req("SessionId", Ty::Str)], NONE, Undo::None) },
    Operation {
        real_aws_only: true,
        ..read("ssm:DescribeSessions", &[req("State", Ty::Enum(&["Active", "History"])), p("Filters", SESSION_FILTERS)])
    },
    // ---- STS
    read("sts:GetCallerIdentity", &[]),
    // ---- labrun's own: answers "can this instance reach Systems Manager?" from describe calls.
    Operation { synthetic: true, ..read("labrun:CheckSsmReachability", &[req("InstanceId", Ty::Str)]) },
];

/// Finds an operation by its `service:Action` name: a curated one (merged with its model), or
/// any operation of an embedded service model (`lambda:CreateFunction`), built once per process.
pub fn operation(name: &str) -> Option<&'static Operation> {
    crate::derive::operation(name)
}

/// The curated operations, each as [`operation`] returns it (merged with its model).
pub fn curated() -> impl Iterator<Item = &'static Operation> {
    OPERATIONS.iter().map(|o| operation(o.name).unwrap_or(o))
}

/// What a call answers, typed from its service model (member names as the model spells them).
/// None for labrun's own operations and where the model has no output.
pub fn response(op: &Operation) -> Option<&'static Ty> {
    crate::derive::response(op)
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(row[j + 1]) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for op in OPERATIONS {
            assert!(seen.insert(op.name), "duplicate {}", op.name);
            assert!(op.name.contains(':'), "{}", op.name);
            assert!(!op.read_only || matches!(op.undo, Undo::None), "{} reads but has an undo", op.name);
        }
    }

    #[test]
    fn undo_targets_exist_and_expressions_compile() {
        for op in OPERATIONS {
            match op.undo {
                Undo::None => {}
                Undo::Call { op: inv, params } => {
                    assert!(operation(inv).is_some(), "{} undoes with unknown {inv}", op.name);
                    jmespath::compile(params).unwrap_or_else(|e| panic!("{}: {e}", op.name));
                }
                Undo::Restore { capture, capture_params, op: inv, params } => {
                    assert!(operation(capture).is_some_and(|c| c.read_only), "{}", op.name);
                    assert!(operation(inv).is_some(), "{}", op.name);
                    jmespath::compile(capture_params).unwrap();
                    jmespath::compile(params).unwrap();
                }
            }
        }
    }

    /// A create is never retried blindly: each one that makes a resource labrun deletes later
    /// either takes a client token or can be found again after a lost answer.
    #[test]
    fn every_create_has_a_way_to_stay_single() {
        for op in OPERATIONS.iter().filter(|o| !o.read_only && !o.real_aws_only) {
            // Tags are set, not made: repeating CreateTags sets the same ones.
            let makes = op.name != "ec2:CreateTags"
                && matches!(op.undo, Undo::Call { op: inv, .. } if inv.contains(":Delete") || inv.contains(":Terminate"));
            if makes {
                assert!(
                    op.client_token.is_some() || op.lookup.is_some() || !op.already.is_empty(),
                    "{} creates something but has no client token, lookup or `already` codes",
                    op.name
                );
            }
            if let Some(t) = op.client_token {
                assert!(op.param(t).is_some(), "{}: client token member {t} is not a parameter", op.name);
            }
            if let Some(l) = op.lookup {
                assert!(operation(l.op).is_some_and(|r| r.read_only), "{}: lookup {} is not a catalog read", op.name, l.op);
                for e in [l.params, l.items, l.response] {
                    jmespath::compile(e).unwrap_or_else(|err| panic!("{}: {e}: {err}", op.name));
                }
                for (_, request_field) in l.matching {
                    assert!(op.param(request_field).is_some(), "{}: matching on unknown {request_field}", op.name);
                }
            }
        }
    }

    #[test]
    fn cli_names_follow_aws_cli() {
        assert_eq!(operation("ec2:DescribeVpcEndpoints").unwrap().cli_command(), "aws ec2 describe-vpc-endpoints");
        assert_eq!(operation("s3:ListObjectsV2").unwrap().cli_command(), "aws s3api list-objects-v2");
        assert_eq!(kebab("IamInstanceProfile"), "iam-instance-profile");
        assert_eq!(kebab("VpcEndpointIds"), "vpc-endpoint-ids");
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("CreateVcp", ["CreateVpc", "DeleteVpc"]), Some("CreateVpc"));
        assert_eq!(did_you_mean("Zebra", ["CreateVpc"]), None);
    }
}
