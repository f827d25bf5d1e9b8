//! SSM and STS bindings.

use crate::ec2::{send, with_params};
use crate::json::{Params, ToJson, enum_json, from_json, to_json};
use crate::{CallError, sdk_error};
use aws_sdk_ssm::operation as o;
use aws_sdk_ssm::types as t;
use serde_json::Value;

pub async fn call(c: &aws_sdk_ssm::Client, action: &str, p: &mut Params) -> Result<Value, CallError> {
    Ok(match action {
        "GetParameter" => send!(c.get_parameter(), p, {"Name" => set_name, "WithDecryption" => set_with_decryption}).to_json(),
        "PutParameter" => send!(c.put_parameter(), p, {"Name" => set_name, "Value" => set_value, "Type" => set_type,
                                                      "Description" => set_description, "Tags" => set_tags}).to_json(),
        "DeleteParameter" => send!(c.delete_parameter(), p, {"Name" => set_name}).to_json(),
        // Pages hold 10 parameters by default: follow them, so the sweep and inventory see all.
        "DescribeParameters" => {
            let mut items = Vec::new();
            let mut pages = with_params!(c.describe_parameters(), p, {"ParameterFilters" => set_parameter_filters}).into_paginator().page_size(50).send();
            while let Some(page) = pages.next().await {
                items.extend(page.map_err(sdk_error)?.parameters().iter().map(ToJson::to_json));
            }
            serde_json::json!({ "Parameters": items })
        }
        "ListTagsForResource" => send!(c.list_tags_for_resource(), p, {"ResourceType" => set_resource_type, "ResourceId" => set_resource_id}).to_json(),
        "CreateDocument" => send!(c.create_document(), p, {"Name" => set_name, "Content" => set_content, "DocumentType" => set_document_type,
                                                          "DocumentFormat" => set_document_format, "Tags" => set_tags}).to_json(),
        "UpdateDocument" => send!(c.update_document(), p, {"Name" => set_name, "Content" => set_content, "DocumentVersion" => set_document_version,
                                                          "DocumentFormat" => set_document_format}).to_json(),
        "DeleteDocument" => send!(c.delete_document(), p, {"Name" => set_name}).to_json(),
        "UpdateDocumentDefaultVersion" => send!(c.update_document_default_version(), p, {"Name" => set_name, "DocumentVersion" => set_document_version}).to_json(),
        "GetDocument" => send!(c.get_document(), p, {"Name" => set_name, "DocumentVersion" => set_document_version, "DocumentFormat" => set_document_format}).to_json(),
        "ListDocuments" => {
            let mut items = Vec::new();
            let mut pages = with_params!(c.list_documents(), p, {"Filters" => set_filters}).into_paginator().page_size(50).items().send();
            while let Some(item) = pages.next().await {
                items.push(item.map_err(sdk_error)?.to_json());
            }
            serde_json::json!({ "DocumentIdentifiers": items })
        }
        "DescribeInstanceInformation" => send!(c.describe_instance_information(), p, {"Filters" => set_filters}).to_json(),
        "StartSession" => send!(c.start_session(), p, {"Target" => set_target, "DocumentName" => set_document_name, "Parameters" => set_parameters}).to_json(),
        "TerminateSession" => send!(c.terminate_session(), p, {"SessionId" => set_session_id}).to_json(),
        "DescribeSessions" => send!(c.describe_sessions(), p, {"State" => set_state, "Filters" => set_filters}).to_json(),
        _ => return Err(crate::unbound("ssm", action)),
    })
}

pub async fn call_sts(c: &aws_sdk_sts::Client, action: &str, p: &mut Params) -> Result<Value, CallError> {
    match action {
        "GetCallerIdentity" => Ok(send!(c.get_caller_identity(), p, {}).to_json()),
        _ => Err(crate::unbound("sts", action)),
    }
}

from_json! {
    t::Tag { "Key" => set_key, "Value" => set_value }
    t::DocumentKeyValuesFilter { "Key" => set_key, "Values" => set_values }
    t::InstanceInformationStringFilter { "Key" => set_key, "Values" => set_values }
    t::SessionFilter { "key" => set_key, "value" => set_value }
    t::ParameterStringFilter { "Key" => set_key, "Option" => set_option, "Values" => set_values }
}

enum_json! {
    t::DocumentType, t::DocumentFormat, t::DocumentStatus, t::ParameterType, t::PingStatus, t::PlatformType, t::SessionState,
    t::SessionStatus, t::SessionFilterKey, t::ResourceTypeForTagging, t::ResourceType, t::ParameterTier,
}

to_json! {
    t::Tag { "Key" => key, "Value" => value }
    t::Parameter { "Name" => name, "Type" => r#type, "Value" => value, "Version" => version, "ARN" => arn, "DataType" => data_type }
    t::DocumentDescription { "Name" => name, "DocumentType" => document_type, "DocumentFormat" => document_format, "DocumentVersion" => document_version,
                             "LatestVersion" => latest_version, "DefaultVersion" => default_version, "Status" => status, "Owner" => owner,
                             "CreatedDate" => created_date, "Tags" => tags }
    t::DocumentIdentifier { "Name" => name, "Owner" => owner, "DocumentType" => document_type, "DocumentFormat" => document_format,
                            "DocumentVersion" => document_version, "Tags" => tags }
    t::InstanceInformation { "InstanceId" => instance_id, "PingStatus" => ping_status, "PlatformType" => platform_type, "PlatformName" => platform_name,
                             "AgentVersion" => agent_version, "LastPingDateTime" => last_ping_date_time, "ComputerName" => computer_name,
                             "IPAddress" => ip_address, "ResourceType" => resource_type }
    t::Session { "SessionId" => session_id, "Target" => target, "Status" => status, "StartDate" => start_date, "EndDate" => end_date,
                 "DocumentName" => document_name, "Owner" => owner }
    o::get_parameter::GetParameterOutput { "Parameter" => parameter }
    o::put_parameter::PutParameterOutput { "Version" => version, "Tier" => tier }
    o::delete_parameter::DeleteParameterOutput {}
    t::ParameterMetadata { "Name" => name, "ARN" => arn, "Type" => r#type, "Description" => description, "Version" => version,
                           "LastModifiedDate" => last_modified_date, "Tier" => tier, "DataType" => data_type }
    o::list_tags_for_resource::ListTagsForResourceOutput { "TagList" => tag_list }
    o::create_document::CreateDocumentOutput { "DocumentDescription" => document_description }
    o::update_document::UpdateDocumentOutput { "DocumentDescription" => document_description }
    o::delete_document::DeleteDocumentOutput {}
    o::update_document_default_version::UpdateDocumentDefaultVersionOutput { "Description" => description }
    t::DocumentDefaultVersionDescription { "Name" => name, "DefaultVersion" => default_version, "DefaultVersionName" => default_version_name }
    o::get_document::GetDocumentOutput { "Name" => name, "DocumentType" => document_type, "DocumentFormat" => document_format,
                                         "DocumentVersion" => document_version, "Status" => status, "Content" => content }
    o::describe_instance_information::DescribeInstanceInformationOutput { "InstanceInformationList" => instance_information_list }
    o::start_session::StartSessionOutput { "SessionId" => session_id, "StreamUrl" => stream_url, "TokenValue" => token_value }
    o::terminate_session::TerminateSessionOutput { "SessionId" => session_id }
    o::describe_sessions::DescribeSessionsOutput { "Sessions" => sessions }
    aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput { "UserId" => user_id, "Account" => account, "Arn" => arn }
}
