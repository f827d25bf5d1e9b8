//! EC2 bindings: one arm per catalog operation, and the JSON shape of each type they return.

use crate::json::{Params, ToJson, enum_json, from_json, to_json};
use crate::{CallError, sdk_error};
use aws_sdk_ec2::operation as o;
use aws_sdk_ec2::types as t;
use serde_json::Value;

/// Sets each listed parameter on `builder` from `params`, and refuses any the binding did not read.
macro_rules! with_params {
    ($builder:expr, $p:ident, { $($name:literal => $set:ident),* $(,)? }) => {{
        let b = $builder;
        $(let b = b.$set($p.get($name)?);)*
        $p.finish()?;
        b
    }};
}
pub(crate) use with_params;

/// `with_params!`, then sends the request.
macro_rules! send {
    ($builder:expr, $p:ident, { $($name:literal => $set:ident),* $(,)? }) => {
        $crate::ec2::with_params!($builder, $p, { $($name => $set),* }).send().await.map_err(sdk_error)?
    };
}
pub(crate) use send;

pub async fn call(c: &aws_sdk_ec2::Client, action: &str, p: &mut Params) -> Result<Value, CallError> {
    Ok(match action {
        "CreateVpc" => send!(c.create_vpc(), p, {"CidrBlock" => set_cidr_block, "InstanceTenancy" => set_instance_tenancy, "TagSpecifications" => set_tag_specifications}).to_json(),
        "DeleteVpc" => send!(c.delete_vpc(), p, {"VpcId" => set_vpc_id}).to_json(),
        "DescribeVpcs" => send!(c.describe_vpcs(), p, {"VpcIds" => set_vpc_ids, "Filters" => set_filters}).to_json(),
        "ModifyVpcAttribute" => send!(c.modify_vpc_attribute(), p, {"VpcId" => set_vpc_id, "EnableDnsHostnames" => set_enable_dns_hostnames, "EnableDnsSupport" => set_enable_dns_support}).to_json(),
        "DescribeVpcAttribute" => send!(c.describe_vpc_attribute(), p, {"VpcId" => set_vpc_id, "Attribute" => set_attribute}).to_json(),
        "CreateSubnet" => send!(c.create_subnet(), p, {"VpcId" => set_vpc_id, "CidrBlock" => set_cidr_block, "AvailabilityZone" => set_availability_zone, "TagSpecifications" => set_tag_specifications}).to_json(),
        "DeleteSubnet" => send!(c.delete_subnet(), p, {"SubnetId" => set_subnet_id}).to_json(),
        "DescribeSubnets" => send!(c.describe_subnets(), p, {"SubnetIds" => set_subnet_ids, "Filters" => set_filters}).to_json(),
        "ModifySubnetAttribute" => send!(c.modify_subnet_attribute(), p, {"SubnetId" => set_subnet_id, "MapPublicIpOnLaunch" => set_map_public_ip_on_launch}).to_json(),
        "CreateInternetGateway" => send!(c.create_internet_gateway(), p, {"TagSpecifications" => set_tag_specifications}).to_json(),
        "DeleteInternetGateway" => send!(c.delete_internet_gateway(), p, {"InternetGatewayId" => set_internet_gateway_id}).to_json(),
        "AttachInternetGateway" => send!(c.attach_internet_gateway(), p, {"InternetGatewayId" => set_internet_gateway_id, "VpcId" => set_vpc_id}).to_json(),
        "DetachInternetGateway" => send!(c.detach_internet_gateway(), p, {"InternetGatewayId" => set_internet_gateway_id, "VpcId" => set_vpc_id}).to_json(),
        "DescribeInternetGateways" => send!(c.describe_internet_gateways(), p, {"InternetGatewayIds" => set_internet_gateway_ids, "Filters" => set_filters}).to_json(),
        "CreateRouteTable" => send!(c.create_route_table(), p, {
            "VpcId" => set_vpc_id, "TagSpecifications" => set_tag_specifications, "ClientToken" => set_client_token})
        .to_json(),
        "DeleteRouteTable" => send!(c.delete_route_table(), p, {"RouteTableId" => set_route_table_id}).to_json(),
        "DescribeRouteTables" => send!(c.describe_route_tables(), p, {"RouteTableIds" => set_route_table_ids, "Filters" => set_filters}).to_json(),
        "CreateRoute" => send!(c.create_route(), p, {"RouteTableId" => set_route_table_id, "DestinationCidrBlock" => set_destination_cidr_block, "GatewayId" => set_gateway_id}).to_json(),
        "DeleteRoute" => send!(c.delete_route(), p, {"RouteTableId" => set_route_table_id, "DestinationCidrBlock" => set_destination_cidr_block}).to_json(),
        "AssociateRouteTable" => send!(c.associate_route_table(), p, {"RouteTableId" => set_route_table_id, "SubnetId" => set_subnet_id, "GatewayId" => set_gateway_id}).to_json(),
        "DisassociateRouteTable" => send!(c.disassociate_route_table(), p, {"AssociationId" => set_association_id}).to_json(),
        "CreateSecurityGroup" => send!(c.create_security_group(), p, {"GroupName" => set_group_name, "Description" => set_description, "VpcId" => set_vpc_id, "TagSpecifications" => set_tag_specifications}).to_json(),
        "DeleteSecurityGroup" => send!(c.delete_security_group(), p, {"GroupId" => set_group_id, "GroupName" => set_group_name}).to_json(),
        "DescribeSecurityGroups" => send!(c.describe_security_groups(), p, {"GroupIds" => set_group_ids, "GroupNames" => set_group_names, "Filters" => set_filters}).to_json(),
        "AuthorizeSecurityGroupIngress" => send!(c.authorize_security_group_ingress(), p, {"GroupId" => set_group_id, "IpPermissions" => set_ip_permissions}).to_json(),
        "RevokeSecurityGroupIngress" => send!(c.revoke_security_group_ingress(), p, {"GroupId" => set_group_id, "IpPermissions" => set_ip_permissions}).to_json(),
        "AuthorizeSecurityGroupEgress" => send!(c.authorize_security_group_egress(), p, {"GroupId" => set_group_id, "IpPermissions" => set_ip_permissions}).to_json(),
        "RevokeSecurityGroupEgress" => send!(c.revoke_security_group_egress(), p, {"GroupId" => set_group_id, "IpPermissions" => set_ip_permissions}).to_json(),
        "CreateKeyPair" => send!(c.create_key_pair(), p, {"KeyName" => set_key_name, "KeyType" => set_key_type, "TagSpecifications" => set_tag_specifications}).to_json(),
        "DeleteKeyPair" => send!(c.delete_key_pair(), p, {"KeyName" => set_key_name, "KeyPairId" => set_key_pair_id}).to_json(),
        "DescribeKeyPairs" => send!(c.describe_key_pairs(), p, {"KeyNames" => set_key_names, "KeyPairIds" => set_key_pair_ids, "Filters" => set_filters}).to_json(),
        "DescribeImages" => send!(c.describe_images(), p, {"ImageIds" => set_image_ids, "Owners" => set_owners, "Filters" => set_filters}).to_json(),
        "RunInstances" => {
            // MinCount/MaxCount are required by the API; a lab launching one instance may omit them.
            let min: Option<i32> = p.get("MinCount")?;
            let max: Option<i32> = p.get("MaxCount")?;
            send!(c.run_instances().min_count(min.unwrap_or(1)).max_count(max.or(min).unwrap_or(1)), p, {
                "ImageId" => set_image_id, "InstanceType" => set_instance_type, "SubnetId" => set_subnet_id,
                "SecurityGroupIds" => set_security_group_ids, "KeyName" => set_key_name, "IamInstanceProfile" => set_iam_instance_profile,
                "TagSpecifications" => set_tag_specifications, "ClientToken" => set_client_token})
            .to_json()
        }
        "TerminateInstances" => send!(c.terminate_instances(), p, {"InstanceIds" => set_instance_ids}).to_json(),
        "RebootInstances" => send!(c.reboot_instances(), p, {"InstanceIds" => set_instance_ids}).to_json(),
        "DescribeInstances" => send!(c.describe_instances(), p, {"InstanceIds" => set_instance_ids, "Filters" => set_filters}).to_json(),
        "AssociateIamInstanceProfile" => send!(c.associate_iam_instance_profile(), p, {"InstanceId" => set_instance_id, "IamInstanceProfile" => set_iam_instance_profile}).to_json(),
        "DisassociateIamInstanceProfile" => send!(c.disassociate_iam_instance_profile(), p, {"AssociationId" => set_association_id}).to_json(),
        "DescribeIamInstanceProfileAssociations" => send!(c.describe_iam_instance_profile_associations(), p, {"AssociationIds" => set_association_ids, "Filters" => set_filters}).to_json(),
        "CreateVpcEndpoint" => send!(c.create_vpc_endpoint(), p, {
            "VpcId" => set_vpc_id, "ServiceName" => set_service_name, "VpcEndpointType" => set_vpc_endpoint_type, "SubnetIds" => set_subnet_ids,
            "SecurityGroupIds" => set_security_group_ids, "RouteTableIds" => set_route_table_ids, "PrivateDnsEnabled" => set_private_dns_enabled,
            "PolicyDocument" => set_policy_document, "TagSpecifications" => set_tag_specifications, "ClientToken" => set_client_token})
        .to_json(),
        "DeleteVpcEndpoints" => send!(c.delete_vpc_endpoints(), p, {"VpcEndpointIds" => set_vpc_endpoint_ids}).to_json(),
        "DescribeVpcEndpoints" => send!(c.describe_vpc_endpoints(), p, {"VpcEndpointIds" => set_vpc_endpoint_ids, "Filters" => set_filters}).to_json(),
        "DescribeAvailabilityZones" => send!(c.describe_availability_zones(), p, {"ZoneNames" => set_zone_names, "Filters" => set_filters}).to_json(),
        "CreateTags" => send!(c.create_tags(), p, {"Resources" => set_resources, "Tags" => set_tags}).to_json(),
        "DeleteTags" => send!(c.delete_tags(), p, {"Resources" => set_resources, "Tags" => set_tags}).to_json(),
        "DescribeTags" => send!(c.describe_tags(), p, {"Filters" => set_filters}).to_json(),
        _ => return Err(crate::unbound("ec2", action)),
    })
}

from_json! {
    t::Filter { "Name" => set_name, "Values" => set_values }
    t::Tag { "Key" => set_key, "Value" => set_value }
    t::TagSpecification { "ResourceType" => set_resource_type, "Tags" => set_tags }
    t::AttributeBooleanValue { "Value" => set_value }
    t::IpPermission { "IpProtocol" => set_ip_protocol, "FromPort" => set_from_port, "ToPort" => set_to_port, "IpRanges" => set_ip_ranges,
                      "PrefixListIds" => set_prefix_list_ids, "UserIdGroupPairs" => set_user_id_group_pairs }
    t::IpRange { "CidrIp" => set_cidr_ip, "Description" => set_description }
    t::PrefixListId { "PrefixListId" => set_prefix_list_id, "Description" => set_description }
    t::UserIdGroupPair { "GroupId" => set_group_id, "Description" => set_description }
    t::IamInstanceProfileSpecification { "Name" => set_name, "Arn" => set_arn }
}

enum_json! {
    t::ResourceType, t::Tenancy, t::VpcState, t::SubnetState, t::AttachmentStatus, t::RouteState, t::RouteOrigin,
    t::RouteTableAssociationStateCode, t::InstanceType, t::InstanceStateName, t::PlatformValues, t::ArchitectureValues,
    t::ImageState, t::DeviceType, t::VpcEndpointType, t::State, t::IamInstanceProfileAssociationState, t::AvailabilityZoneState,
    t::KeyType, t::VpcAttributeName,
}

to_json! {
    t::Tag { "Key" => key, "Value" => value }
    t::AttributeBooleanValue { "Value" => value }
    t::Vpc { "VpcId" => vpc_id, "CidrBlock" => cidr_block, "State" => state, "IsDefault" => is_default, "InstanceTenancy" => instance_tenancy,
             "DhcpOptionsId" => dhcp_options_id, "OwnerId" => owner_id, "Tags" => tags }
    t::Subnet { "SubnetId" => subnet_id, "VpcId" => vpc_id, "CidrBlock" => cidr_block, "AvailabilityZone" => availability_zone,
                "AvailabilityZoneId" => availability_zone_id, "AvailableIpAddressCount" => available_ip_address_count,
                "MapPublicIpOnLaunch" => map_public_ip_on_launch, "DefaultForAz" => default_for_az, "State" => state, "OwnerId" => owner_id,
                "SubnetArn" => subnet_arn, "Tags" => tags }
    t::InternetGateway { "InternetGatewayId" => internet_gateway_id, "OwnerId" => owner_id, "Attachments" => attachments, "Tags" => tags }
    t::InternetGatewayAttachment { "VpcId" => vpc_id, "State" => state }
    t::RouteTable { "RouteTableId" => route_table_id, "VpcId" => vpc_id, "OwnerId" => owner_id, "Routes" => routes, "Associations" => associations, "Tags" => tags }
    t::Route { "DestinationCidrBlock" => destination_cidr_block, "DestinationPrefixListId" => destination_prefix_list_id, "GatewayId" => gateway_id,
               "NatGatewayId" => nat_gateway_id, "Origin" => origin, "State" => state }
    t::RouteTableAssociation { "Main" => main, "RouteTableAssociationId" => route_table_association_id, "RouteTableId" => route_table_id,
                               "SubnetId" => subnet_id, "GatewayId" => gateway_id, "AssociationState" => association_state }
    t::RouteTableAssociationState { "State" => state, "StatusMessage" => status_message }
    t::SecurityGroup { "GroupId" => group_id, "GroupName" => group_name, "Description" => description, "VpcId" => vpc_id, "OwnerId" => owner_id,
                       "IpPermissions" => ip_permissions, "IpPermissionsEgress" => ip_permissions_egress, "Tags" => tags }
    t::IpPermission { "IpProtocol" => ip_protocol, "FromPort" => from_port, "ToPort" => to_port, "IpRanges" => ip_ranges,
                      "PrefixListIds" => prefix_list_ids, "UserIdGroupPairs" => user_id_group_pairs }
    t::IpRange { "CidrIp" => cidr_ip, "Description" => description }
    t::PrefixListId { "PrefixListId" => prefix_list_id, "Description" => description }
    t::UserIdGroupPair { "GroupId" => group_id, "GroupName" => group_name, "UserId" => user_id, "VpcId" => vpc_id, "Description" => description }
    t::KeyPairInfo { "KeyPairId" => key_pair_id, "KeyName" => key_name, "KeyFingerprint" => key_fingerprint, "KeyType" => key_type,
                     "CreateTime" => create_time, "Tags" => tags }
    t::Image { "ImageId" => image_id, "Name" => name, "Description" => description, "Architecture" => architecture, "Platform" => platform,
               "PlatformDetails" => platform_details, "OwnerId" => owner_id, "State" => state, "ImageLocation" => image_location,
               "RootDeviceType" => root_device_type, "CreationDate" => creation_date, "Public" => public, "Tags" => tags }
    t::Reservation { "ReservationId" => reservation_id, "OwnerId" => owner_id, "Instances" => instances }
    t::Instance { "InstanceId" => instance_id, "ImageId" => image_id, "InstanceType" => instance_type, "KeyName" => key_name, "State" => state,
                  "SubnetId" => subnet_id, "VpcId" => vpc_id, "PrivateIpAddress" => private_ip_address, "PublicIpAddress" => public_ip_address,
                  "PrivateDnsName" => private_dns_name, "PublicDnsName" => public_dns_name, "SecurityGroups" => security_groups,
                  "IamInstanceProfile" => iam_instance_profile, "Platform" => platform, "PlatformDetails" => platform_details,
                  "Architecture" => architecture, "LaunchTime" => launch_time, "Placement" => placement, "Tags" => tags }
    t::InstanceState { "Code" => code, "Name" => name }
    t::GroupIdentifier { "GroupId" => group_id, "GroupName" => group_name }
    t::IamInstanceProfile { "Arn" => arn, "Id" => id }
    t::Placement { "AvailabilityZone" => availability_zone, "Tenancy" => tenancy }
    t::InstanceStateChange { "InstanceId" => instance_id, "CurrentState" => current_state, "PreviousState" => previous_state }
    t::IamInstanceProfileAssociation { "AssociationId" => association_id, "InstanceId" => instance_id, "IamInstanceProfile" => iam_instance_profile, "State" => state }
    t::VpcEndpoint { "VpcEndpointId" => vpc_endpoint_id, "VpcEndpointType" => vpc_endpoint_type, "VpcId" => vpc_id, "ServiceName" => service_name,
                     "State" => state, "PolicyDocument" => policy_document, "RouteTableIds" => route_table_ids, "SubnetIds" => subnet_ids,
                     "Groups" => groups, "PrivateDnsEnabled" => private_dns_enabled, "NetworkInterfaceIds" => network_interface_ids,
                     "DnsEntries" => dns_entries, "CreationTimestamp" => creation_timestamp, "OwnerId" => owner_id, "Tags" => tags }
    t::SecurityGroupIdentifier { "GroupId" => group_id, "GroupName" => group_name }
    t::DnsEntry { "DnsName" => dns_name, "HostedZoneId" => hosted_zone_id }
    t::AvailabilityZone { "ZoneName" => zone_name, "ZoneId" => zone_id, "State" => state, "RegionName" => region_name }
    t::TagDescription { "Key" => key, "Value" => value, "ResourceId" => resource_id, "ResourceType" => resource_type }
    t::UnsuccessfulItem { "ResourceId" => resource_id, "Error" => error }
    t::UnsuccessfulItemError { "Code" => code, "Message" => message }

    o::create_vpc::CreateVpcOutput { "Vpc" => vpc }
    o::delete_vpc::DeleteVpcOutput {}
    o::describe_vpcs::DescribeVpcsOutput { "Vpcs" => vpcs, "NextToken" => next_token }
    o::modify_vpc_attribute::ModifyVpcAttributeOutput {}
    o::describe_vpc_attribute::DescribeVpcAttributeOutput { "VpcId" => vpc_id, "EnableDnsHostnames" => enable_dns_hostnames, "EnableDnsSupport" => enable_dns_support }
    o::create_subnet::CreateSubnetOutput { "Subnet" => subnet }
    o::delete_subnet::DeleteSubnetOutput {}
    o::describe_subnets::DescribeSubnetsOutput { "Subnets" => subnets, "NextToken" => next_token }
    o::modify_subnet_attribute::ModifySubnetAttributeOutput {}
    o::create_internet_gateway::CreateInternetGatewayOutput { "InternetGateway" => internet_gateway }
    o::delete_internet_gateway::DeleteInternetGatewayOutput {}
    o::attach_internet_gateway::AttachInternetGatewayOutput {}
    o::detach_internet_gateway::DetachInternetGatewayOutput {}
    o::describe_internet_gateways::DescribeInternetGatewaysOutput { "InternetGateways" => internet_gateways }
    o::create_route_table::CreateRouteTableOutput { "RouteTable" => route_table }
    o::delete_route_table::DeleteRouteTableOutput {}
    o::describe_route_tables::DescribeRouteTablesOutput { "RouteTables" => route_tables }
    o::create_route::CreateRouteOutput { "Return" => r#return }
    o::delete_route::DeleteRouteOutput {}
    o::associate_route_table::AssociateRouteTableOutput { "AssociationId" => association_id, "AssociationState" => association_state }
    o::disassociate_route_table::DisassociateRouteTableOutput {}
    o::create_security_group::CreateSecurityGroupOutput { "GroupId" => group_id, "Tags" => tags }
    o::delete_security_group::DeleteSecurityGroupOutput { "Return" => r#return, "GroupId" => group_id }
    o::describe_security_groups::DescribeSecurityGroupsOutput { "SecurityGroups" => security_groups }
    o::authorize_security_group_ingress::AuthorizeSecurityGroupIngressOutput { "Return" => r#return }
    o::revoke_security_group_ingress::RevokeSecurityGroupIngressOutput { "Return" => r#return }
    o::authorize_security_group_egress::AuthorizeSecurityGroupEgressOutput { "Return" => r#return }
    o::revoke_security_group_egress::RevokeSecurityGroupEgressOutput { "Return" => r#return }
    o::create_key_pair::CreateKeyPairOutput { "KeyPairId" => key_pair_id, "KeyName" => key_name, "KeyFingerprint" => key_fingerprint,
                                             "KeyMaterial" => key_material, "Tags" => tags }
    o::delete_key_pair::DeleteKeyPairOutput { "Return" => r#return, "KeyPairId" => key_pair_id }
    o::describe_key_pairs::DescribeKeyPairsOutput { "KeyPairs" => key_pairs }
    o::describe_images::DescribeImagesOutput { "Images" => images }
    o::run_instances::RunInstancesOutput { "ReservationId" => reservation_id, "OwnerId" => owner_id, "Instances" => instances }
    o::terminate_instances::TerminateInstancesOutput { "TerminatingInstances" => terminating_instances }
    o::reboot_instances::RebootInstancesOutput {}
    o::describe_instances::DescribeInstancesOutput { "Reservations" => reservations, "NextToken" => next_token }
    o::associate_iam_instance_profile::AssociateIamInstanceProfileOutput { "IamInstanceProfileAssociation" => iam_instance_profile_association }
    o::disassociate_iam_instance_profile::DisassociateIamInstanceProfileOutput { "IamInstanceProfileAssociation" => iam_instance_profile_association }
    o::describe_iam_instance_profile_associations::DescribeIamInstanceProfileAssociationsOutput { "IamInstanceProfileAssociations" => iam_instance_profile_associations }
    o::create_vpc_endpoint::CreateVpcEndpointOutput { "VpcEndpoint" => vpc_endpoint }
    o::delete_vpc_endpoints::DeleteVpcEndpointsOutput { "Unsuccessful" => unsuccessful }
    o::describe_vpc_endpoints::DescribeVpcEndpointsOutput { "VpcEndpoints" => vpc_endpoints }
    o::describe_availability_zones::DescribeAvailabilityZonesOutput { "AvailabilityZones" => availability_zones }
    o::create_tags::CreateTagsOutput {}
    o::delete_tags::DeleteTagsOutput {}
    o::describe_tags::DescribeTagsOutput { "Tags" => tags }
}

/// DeleteVpcEndpoints reports per-endpoint failures in its body, not as an error.
pub fn unsuccessful(v: &Value) -> Option<CallError> {
    let first = v.get("Unsuccessful")?.as_array()?.first()?;
    let code = first.pointer("/Error/Code").and_then(Value::as_str).unwrap_or("Unsuccessful").to_string();
    let message = first.pointer("/Error/Message").and_then(Value::as_str).unwrap_or("").to_string();
    Some(crate::classify(code, message, None))
}
