//! S3 bindings.

use crate::ec2::send;
use crate::json::{Params, ToJson, enum_json, from_json, to_json};
use crate::{CallError, sdk_error};
use aws_sdk_s3::operation as o;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types as t;
use serde_json::Value;

pub async fn call(c: &aws_sdk_s3::Client, action: &str, p: &mut Params) -> Result<Value, CallError> {
    Ok(match action {
        "CreateBucket" => {
            send!(c.create_bucket(), p, {"Bucket" => set_bucket, "CreateBucketConfiguration" => set_create_bucket_configuration}).to_json()
        }
        "DeleteBucket" => send!(c.delete_bucket(), p, {"Bucket" => set_bucket}).to_json(),
        "HeadBucket" => send!(c.head_bucket(), p, {"Bucket" => set_bucket}).to_json(),
        "ListBuckets" => send!(c.list_buckets(), p, {"Prefix" => set_prefix}).to_json(),
        "GetBucketTagging" => send!(c.get_bucket_tagging(), p, {"Bucket" => set_bucket}).to_json(),
        "PutBucketTagging" => send!(c.put_bucket_tagging(), p, {"Bucket" => set_bucket, "Tagging" => set_tagging}).to_json(),
        "ListObjectsV2" => {
            send!(c.list_objects_v2(), p, {"Bucket" => set_bucket, "Prefix" => set_prefix, "ContinuationToken" => set_continuation_token})
                .to_json()
        }
        "GetPublicAccessBlock" => send!(c.get_public_access_block(), p, {"Bucket" => set_bucket}).to_json(),
        "GetBucketLocation" => send!(c.get_bucket_location(), p, {"Bucket" => set_bucket}).to_json(),
        "GetBucketOwnershipControls" => send!(c.get_bucket_ownership_controls(), p, {"Bucket" => set_bucket}).to_json(),
        "GetBucketEncryption" => send!(c.get_bucket_encryption(), p, {"Bucket" => set_bucket}).to_json(),
        "DeleteObject" => send!(c.delete_object(), p, {"Bucket" => set_bucket, "Key" => set_key}).to_json(),
        "DeleteObjects" => send!(c.delete_objects(), p, {"Bucket" => set_bucket, "Delete" => set_delete}).to_json(),
        "PutObject" => {
            let body: Option<String> = p.get("Body")?;
            send!(c.put_object().body(ByteStream::from(body.unwrap_or_default().into_bytes())), p, {
                "Bucket" => set_bucket, "Key" => set_key, "ContentType" => set_content_type, "IfNoneMatch" => set_if_none_match})
            .to_json()
        }
        _ => return Err(crate::unbound("s3", action)),
    })
}

from_json! {
    t::Tag { "Key" => set_key, "Value" => set_value }
    t::Tagging { "TagSet" => set_tag_set }
    t::CreateBucketConfiguration { "LocationConstraint" => set_location_constraint }
    t::Delete { "Objects" => set_objects, "Quiet" => set_quiet }
    t::ObjectIdentifier { "Key" => set_key, "VersionId" => set_version_id }
}

enum_json! { t::BucketLocationConstraint, t::ObjectOwnership, t::ServerSideEncryption }

to_json! {
    t::Tag { "Key" => key, "Value" => value }
    t::Bucket { "Name" => name, "CreationDate" => creation_date, "BucketRegion" => bucket_region }
    t::Object { "Key" => key, "Size" => size, "LastModified" => last_modified }
    t::PublicAccessBlockConfiguration { "BlockPublicAcls" => block_public_acls, "IgnorePublicAcls" => ignore_public_acls,
                                        "BlockPublicPolicy" => block_public_policy, "RestrictPublicBuckets" => restrict_public_buckets }
    o::create_bucket::CreateBucketOutput { "Location" => location }
    o::delete_bucket::DeleteBucketOutput {}
    o::head_bucket::HeadBucketOutput { "BucketRegion" => bucket_region }
    o::list_buckets::ListBucketsOutput { "Buckets" => buckets }
    o::get_bucket_tagging::GetBucketTaggingOutput { "TagSet" => tag_set }
    o::put_bucket_tagging::PutBucketTaggingOutput {}
    o::list_objects_v2::ListObjectsV2Output { "Name" => name, "Prefix" => prefix, "KeyCount" => key_count, "Contents" => contents,
                                              "IsTruncated" => is_truncated, "ContinuationToken" => continuation_token,
                                              "NextContinuationToken" => next_continuation_token }
    o::get_public_access_block::GetPublicAccessBlockOutput { "PublicAccessBlockConfiguration" => public_access_block_configuration }
    o::get_bucket_location::GetBucketLocationOutput { "LocationConstraint" => location_constraint }
    o::get_bucket_ownership_controls::GetBucketOwnershipControlsOutput { "OwnershipControls" => ownership_controls }
    t::OwnershipControls { "Rules" => rules }
    t::OwnershipControlsRule { "ObjectOwnership" => object_ownership }
    o::get_bucket_encryption::GetBucketEncryptionOutput { "ServerSideEncryptionConfiguration" => server_side_encryption_configuration }
    t::ServerSideEncryptionConfiguration { "Rules" => rules }
    t::ServerSideEncryptionRule { "ApplyServerSideEncryptionByDefault" => apply_server_side_encryption_by_default, "BucketKeyEnabled" => bucket_key_enabled }
    t::ServerSideEncryptionByDefault { "SSEAlgorithm" => sse_algorithm, "KMSMasterKeyID" => kms_master_key_id }
    o::delete_object::DeleteObjectOutput { "DeleteMarker" => delete_marker, "VersionId" => version_id }
    o::delete_objects::DeleteObjectsOutput { "Deleted" => deleted, "Errors" => errors }
    t::DeletedObject { "Key" => key, "VersionId" => version_id, "DeleteMarker" => delete_marker }
    t::Error { "Key" => key, "VersionId" => version_id, "Code" => code, "Message" => message }
    o::put_object::PutObjectOutput { "ETag" => e_tag, "VersionId" => version_id }
}
