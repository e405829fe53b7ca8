//! The embedded LiveKit bundle: every LiveKit policy in one component.
//!
//! Each policy is still its own crate, tested on its own and buildable as its
//! own component (`--policy`). The host embeds this set instead so that a
//! webhook request costs one instance and one copy of the object, not five;
//! it still calls, times, limits and blames every member separately. The
//! order here is the order `lkguard` reports them in and must match
//! `MEMBERS` in `host/build.rs`.

lkguard_policy_sdk::export_policy_set!(
    lkguard_policy_use_external_ip::UseExternalIp,
    lkguard_policy_node_ip::NodeIp,
    lkguard_policy_image_digest::ImageDigest,
    lkguard_policy_rtc_service::RtcService,
    lkguard_policy_secrets_source::SecretsSource,
    lkguard_policy_service_links::ServiceLinks,
    lkguard_policy_replicas::Replicas,
    lkguard_policy_config_schema::ConfigSchema,
    lkguard_policy_no_cloud::NoCloud,
    lkguard_policy_secret_keys::SecretKeys,
    lkguard_policy_urls::Urls,
);
