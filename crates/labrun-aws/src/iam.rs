//! IAM bindings.

use crate::ec2::{send, with_params};
use crate::json::{Params, ToJson, enum_json, from_json, policy_document, to_json};
use crate::{CallError, sdk_error};
use aws_sdk_iam::operation as o;
use aws_sdk_iam::types as t;
use serde_json::Value;

/// Sends every page of a paginated list call and returns `{<key>: [all items]}`.
macro_rules! all_pages {
    ($builder:expr, $p:ident, { $($name:literal => $set:ident),* $(,)? }, $key:literal) => {{
        let mut items = Vec::new();
        // The largest pages IAM serves: a whole listing is retried as one call, so fewer pages
        // means fewer chances for one throttled page to fail it.
        let mut pages = with_params!($builder, $p, { $($name => $set),* }).into_paginator().page_size(1000).items().send();
        while let Some(item) = pages.next().await {
            items.push(item.map_err(sdk_error)?.to_json());
        }
        serde_json::json!({ $key: items })
    }};
}

pub async fn call(c: &aws_sdk_iam::Client, action: &str, p: &mut Params) -> Result<Value, CallError> {
    let mut out = dispatch(c, action, p).await?;
    decode_policy_documents(&mut out);
    Ok(out)
}

/// IAM returns role trust policies URL-encoded; the CLI shows them decoded, as JSON.
fn decode_policy_documents(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "AssumeRolePolicyDocument" {
                    if let Value::String(raw) = x {
                        *x = policy_document(Some(raw));
                    }
                } else {
                    decode_policy_documents(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(decode_policy_documents),
        _ => {}
    }
}

async fn dispatch(c: &aws_sdk_iam::Client, action: &str, p: &mut Params) -> Result<Value, CallError> {
    Ok(match action {
        "CreateRole" => send!(c.create_role(), p, {"RoleName" => set_role_name, "AssumeRolePolicyDocument" => set_assume_role_policy_document,
                                                  "Description" => set_description, "Path" => set_path, "Tags" => set_tags}).to_json(),
        "DeleteRole" => send!(c.delete_role(), p, {"RoleName" => set_role_name}).to_json(),
        "GetRole" => send!(c.get_role(), p, {"RoleName" => set_role_name}).to_json(),
        // IAM lists come in pages of 100: follow them, so a lookup by name sees the whole account
        // (and the sweep sees every tag, policy and key of what it deletes).
        "ListRoles" => all_pages!(c.list_roles(), p, {"PathPrefix" => set_path_prefix}, "Roles"),
        "AttachRolePolicy" => send!(c.attach_role_policy(), p, {"RoleName" => set_role_name, "PolicyArn" => set_policy_arn}).to_json(),
        "DetachRolePolicy" => send!(c.detach_role_policy(), p, {"RoleName" => set_role_name, "PolicyArn" => set_policy_arn}).to_json(),
        "ListAttachedRolePolicies" => all_pages!(c.list_attached_role_policies(), p, {"RoleName" => set_role_name}, "AttachedPolicies"),
        "ListRolePolicies" => all_pages!(c.list_role_policies(), p, {"RoleName" => set_role_name}, "PolicyNames"),
        "DeleteRolePolicy" => send!(c.delete_role_policy(), p, {"RoleName" => set_role_name, "PolicyName" => set_policy_name}).to_json(),
        "ListRoleTags" => all_pages!(c.list_role_tags(), p, {"RoleName" => set_role_name}, "Tags"),
        "ListInstanceProfilesForRole" => all_pages!(c.list_instance_profiles_for_role(), p, {"RoleName" => set_role_name}, "InstanceProfiles"),
        "CreateInstanceProfile" => send!(c.create_instance_profile(), p, {"InstanceProfileName" => set_instance_profile_name, "Path" => set_path, "Tags" => set_tags}).to_json(),
        "DeleteInstanceProfile" => send!(c.delete_instance_profile(), p, {"InstanceProfileName" => set_instance_profile_name}).to_json(),
        "GetInstanceProfile" => send!(c.get_instance_profile(), p, {"InstanceProfileName" => set_instance_profile_name}).to_json(),
        "ListInstanceProfiles" => all_pages!(c.list_instance_profiles(), p, {"PathPrefix" => set_path_prefix}, "InstanceProfiles"),
        "AddRoleToInstanceProfile" => send!(c.add_role_to_instance_profile(), p, {"InstanceProfileName" => set_instance_profile_name, "RoleName" => set_role_name}).to_json(),
        "RemoveRoleFromInstanceProfile" => send!(c.remove_role_from_instance_profile(), p, {"InstanceProfileName" => set_instance_profile_name, "RoleName" => set_role_name}).to_json(),
        "ListInstanceProfileTags" => all_pages!(c.list_instance_profile_tags(), p, {"InstanceProfileName" => set_instance_profile_name}, "Tags"),
        "CreateUser" => send!(c.create_user(), p, {"UserName" => set_user_name, "Path" => set_path, "Tags" => set_tags}).to_json(),
        "DeleteUser" => send!(c.delete_user(), p, {"UserName" => set_user_name}).to_json(),
        "GetUser" => send!(c.get_user(), p, {"UserName" => set_user_name}).to_json(),
        "ListUsers" => all_pages!(c.list_users(), p, {"PathPrefix" => set_path_prefix}, "Users"),
        "AttachUserPolicy" => send!(c.attach_user_policy(), p, {"UserName" => set_user_name, "PolicyArn" => set_policy_arn}).to_json(),
        "DetachUserPolicy" => send!(c.detach_user_policy(), p, {"UserName" => set_user_name, "PolicyArn" => set_policy_arn}).to_json(),
        "ListAttachedUserPolicies" => all_pages!(c.list_attached_user_policies(), p, {"UserName" => set_user_name}, "AttachedPolicies"),
        "ListUserPolicies" => all_pages!(c.list_user_policies(), p, {"UserName" => set_user_name}, "PolicyNames"),
        "DeleteUserPolicy" => send!(c.delete_user_policy(), p, {"UserName" => set_user_name, "PolicyName" => set_policy_name}).to_json(),
        "ListUserTags" => all_pages!(c.list_user_tags(), p, {"UserName" => set_user_name}, "Tags"),
        "CreateAccessKey" => send!(c.create_access_key(), p, {"UserName" => set_user_name}).to_json(),
        "DeleteAccessKey" => send!(c.delete_access_key(), p, {"UserName" => set_user_name, "AccessKeyId" => set_access_key_id}).to_json(),
        "ListAccessKeys" => all_pages!(c.list_access_keys(), p, {"UserName" => set_user_name}, "AccessKeyMetadata"),
        "GetAccessKeyLastUsed" => send!(c.get_access_key_last_used(), p, {"AccessKeyId" => set_access_key_id}).to_json(),
        _ => return Err(crate::unbound("iam", action)),
    })
}

from_json! {
    t::Tag { "Key" => set_key, "Value" => set_value }
}

enum_json! { t::StatusType }

to_json! {
    t::Role { "Path" => path, "RoleName" => role_name, "RoleId" => role_id, "Arn" => arn, "CreateDate" => create_date,
              "AssumeRolePolicyDocument" => assume_role_policy_document, "Description" => description,
              "MaxSessionDuration" => max_session_duration, "Tags" => tags }
    t::Tag { "Key" => key, "Value" => value }
    t::AttachedPolicy { "PolicyName" => policy_name, "PolicyArn" => policy_arn }
    t::InstanceProfile { "Path" => path, "InstanceProfileName" => instance_profile_name, "InstanceProfileId" => instance_profile_id,
                         "Arn" => arn, "CreateDate" => create_date, "Roles" => roles, "Tags" => tags }
    t::User { "Path" => path, "UserName" => user_name, "UserId" => user_id, "Arn" => arn, "CreateDate" => create_date, "Tags" => tags }
    t::AccessKey { "UserName" => user_name, "AccessKeyId" => access_key_id, "Status" => status, "SecretAccessKey" => secret_access_key, "CreateDate" => create_date }
    t::AccessKeyMetadata { "UserName" => user_name, "AccessKeyId" => access_key_id, "Status" => status, "CreateDate" => create_date }

    o::create_role::CreateRoleOutput { "Role" => role }
    o::delete_role::DeleteRoleOutput {}
    o::get_role::GetRoleOutput { "Role" => role }
    o::attach_role_policy::AttachRolePolicyOutput {}
    o::detach_role_policy::DetachRolePolicyOutput {}
    o::delete_role_policy::DeleteRolePolicyOutput {}
    o::create_instance_profile::CreateInstanceProfileOutput { "InstanceProfile" => instance_profile }
    o::delete_instance_profile::DeleteInstanceProfileOutput {}
    o::get_instance_profile::GetInstanceProfileOutput { "InstanceProfile" => instance_profile }
    o::add_role_to_instance_profile::AddRoleToInstanceProfileOutput {}
    o::remove_role_from_instance_profile::RemoveRoleFromInstanceProfileOutput {}
    o::create_user::CreateUserOutput { "User" => user }
    o::delete_user::DeleteUserOutput {}
    o::get_user::GetUserOutput { "User" => user }
    o::attach_user_policy::AttachUserPolicyOutput {}
    o::detach_user_policy::DetachUserPolicyOutput {}
    o::delete_user_policy::DeleteUserPolicyOutput {}
    o::create_access_key::CreateAccessKeyOutput { "AccessKey" => access_key }
    o::delete_access_key::DeleteAccessKeyOutput {}
    o::get_access_key_last_used::GetAccessKeyLastUsedOutput { "UserName" => user_name, "AccessKeyLastUsed" => access_key_last_used }
    t::AccessKeyLastUsed { "LastUsedDate" => last_used_date, "ServiceName" => service_name, "Region" => region }
}
