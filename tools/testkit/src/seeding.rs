//! The local store a test or the local stack starts from: moto's table and bucket, actor
//! profiles and photos, the Replicate token in SSM; and reading them back to assert on.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};

use crate::{BUCKET, REGION, TABLE_NAME};

/// A profile to seed (`pk = ACTOR#{actor_id}`, `sk = PROFILE`).
#[derive(Debug, Clone, Copy)]
pub struct SeedProfile<'a> {
    /// The actor id.
    pub actor_id: &'a str,
    /// `actor_name`.
    pub actor_name: &'a str,
    /// `sex`, when the profile has one.
    pub sex: Option<&'a str>,
    /// `base_image_key`.
    pub base_image_key: &'a str,
}

/// The sample actor of the quick start.
pub const SAMPLE_ACTOR: SeedProfile<'static> = SeedProfile {
    actor_id: "0000_european_16_male",
    actor_name: "0000_european_16_male",
    sex: Some("male"),
    base_image_key: "system_actors/base_images/0000_european_16_male.jpg",
};

/// An SDK configuration for a local endpoint, with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing", "testing", None, None, "testkit",
        ))
        .load()
        .await
}

/// Creates the service's table and bucket, leaving them as they are when they exist.
pub async fn create_table_and_bucket(sdk: &SdkConfig) {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .expect("key schema")
    };
    let attribute_of = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .expect("attribute definition")
    };
    let attribute = |name: &str| attribute_of(name, ScalarAttributeType::S);
    // As template.yaml has it: the sparse index of open records.
    let open_records = GlobalSecondaryIndex::builder()
        .index_name("open_records")
        .key_schema(key("open_kind", KeyType::Hash))
        .key_schema(key("held_until", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .expect("open records index");
    let created = dynamodb
        .create_table()
        .table_name(TABLE_NAME)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"))
        .attribute_definitions(attribute("open_kind"))
        .attribute_definitions(attribute_of("held_until", ScalarAttributeType::N))
        .global_secondary_indexes(open_records)
        .send()
        .await;
    if let Err(error) = created {
        let exists = error
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        assert!(exists, "CreateTable failed: {error:?}");
    }
    let created = s3_client(sdk).create_bucket().bucket(BUCKET).send().await;
    if let Err(error) = created {
        let exists = error
            .as_service_error()
            .is_some_and(|e| e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists());
        assert!(exists, "CreateBucket failed: {error:?}");
    }
}

/// Writes an actor profile item.
pub async fn put_profile(sdk: &SdkConfig, profile: &SeedProfile<'_>) {
    let mut item = vec![
        ("pk", format!("ACTOR#{}", profile.actor_id)),
        ("sk", "PROFILE".to_owned()),
        ("actor_name", profile.actor_name.to_owned()),
        ("base_image_key", profile.base_image_key.to_owned()),
    ];
    if let Some(sex) = profile.sex {
        item.push(("sex", sex.to_owned()));
    }
    aws_sdk_dynamodb::Client::new(sdk)
        .put_item()
        .table_name(TABLE_NAME)
        .set_item(Some(
            item.into_iter()
                .map(|(k, v)| (k.to_owned(), AttributeValue::S(v)))
                .collect(),
        ))
        .send()
        .await
        .expect("PutItem of a profile");
}

/// A small JPEG photo stand-in: a synthetic gradient, `width` × `height` pixels.
pub fn sample_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            128,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode a JPEG");
    out.into_inner()
}

/// An S3 client for a local endpoint (path-style).
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build(),
    )
}

/// Writes an object into the test bucket.
pub async fn put_object(sdk: &SdkConfig, key: &str, bytes: Vec<u8>, content_type: &str) {
    s3_client(sdk)
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .content_type(content_type)
        .body(bytes.into())
        .send()
        .await
        .expect("PutObject");
}

/// An object of the test bucket, or `None`.
pub async fn get_object(sdk: &SdkConfig, key: &str) -> Option<Vec<u8>> {
    let output = s3_client(sdk)
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(output.body.collect().await.expect("object body").to_vec())
}

/// Every key of the test bucket under `prefix`, sorted.
pub async fn list_keys(sdk: &SdkConfig, prefix: &str) -> Vec<String> {
    let output = s3_client(sdk)
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(prefix)
        .send()
        .await
        .expect("ListObjectsV2");
    let mut keys: Vec<String> = output
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

/// Every item of the test table, as `pk|sk` strings, sorted.
pub async fn table_keys(sdk: &SdkConfig) -> Vec<String> {
    let output = aws_sdk_dynamodb::Client::new(sdk)
        .scan()
        .table_name(TABLE_NAME)
        .send()
        .await
        .expect("Scan");
    let text = |item: &std::collections::HashMap<String, AttributeValue>, name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let mut keys: Vec<String> = output
        .items()
        .iter()
        .map(|item| format!("{}|{}", text(item, "pk"), text(item, "sk")))
        .collect();
    keys.sort();
    keys
}

/// Sets the operators' kill switch item (`CONTROL` / `KILL_SWITCH`, `enabled`).
pub async fn put_kill_switch(sdk: &SdkConfig, enabled: bool) {
    aws_sdk_dynamodb::Client::new(sdk)
        .put_item()
        .table_name(TABLE_NAME)
        .item("pk", AttributeValue::S("CONTROL".into()))
        .item("sk", AttributeValue::S("KILL_SWITCH".into()))
        .item("enabled", AttributeValue::Bool(enabled))
        .send()
        .await
        .expect("PutItem the kill switch");
}

/// Writes an SSM SecureString parameter.
pub async fn put_secure_parameter(sdk: &SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter");
}

/// A synthetic portrait for the sample actor, made here (no real person): a head and shoulders
/// in flat shapes on a studio gradient, `width` × `height` pixels, as a JPEG.
pub fn synthetic_portrait(width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width as f32, height as f32);
    let inside = |x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32| {
        ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2) <= 1.0
    };
    let image = image::RgbImage::from_fn(width, height, |px, py| {
        let (x, y) = (px as f32, py as f32);
        let eye = |cx: f32| inside(x, y, cx, h * 0.40, w * 0.035, h * 0.025);
        let color = if eye(w * 0.43) || eye(w * 0.57) {
            [40, 30, 25]
        } else if inside(x, y, w * 0.5, h * 0.54, w * 0.07, h * 0.02) && y > h * 0.54 {
            [150, 60, 60]
        } else if inside(x, y, w * 0.5, h * 0.30, w * 0.17, h * 0.10) && y < h * 0.33 {
            [60, 40, 30]
        } else if inside(x, y, w * 0.5, h * 0.42, w * 0.15, h * 0.19) {
            [224, 182, 150]
        } else if inside(x, y, w * 0.5, h * 1.05, w * 0.38, h * 0.40) {
            [50, 70, 110]
        } else {
            let shade = 200 - (y / h * 90.0) as u8;
            [shade, shade, shade.saturating_add(20)]
        };
        image::Rgb(color)
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode a JPEG");
    out.into_inner()
}
