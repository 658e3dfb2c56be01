// What holdfast uses of the AWS SDK, by name. The build bundles the plugin with the SDK's ES
// modules, and names given here let it leave out every command the plugin never sends: the
// SDK then loads in about 40 ms of CPU instead of 100 to 120 (scripts/bundle.mjs).
export {
	CreateBucketCommand,
	DeleteObjectCommand,
	GetBucketVersioningCommand,
	GetObjectCommand,
	GetObjectLockConfigurationCommand,
	HeadBucketCommand,
	HeadObjectCommand,
	ListObjectsV2Command,
	ListObjectVersionsCommand,
	PutObjectCommand,
	PutObjectRetentionCommand,
	S3Client,
} from "@aws-sdk/client-s3";
export { NodeHttpHandler } from "@smithy/node-http-handler";
