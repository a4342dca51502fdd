//! AWS's eventual consistency, which moto does not have, reproduced by `testkit`'s proxy
//! in front of moto (the deployer's `AWS_ENDPOINT_URL` points at the proxy): a new role
//! or instance profile not yet visible, a capacity provider not yet ACTIVE, an account
//! whose ECS service-linked role does not exist yet. Each window is hit (the proxy says
//! which answers it changed) and `up` still converges in one run; and the Auto Scaling
//! group starts empty until its capacity provider is attached, as the ECS guide asks.

mod common;

use common::{Moto, deployer, edited, fake_digest, moto_host, mutating, pinned_manifest, via};
use testkit::{Behaviour, Proxy, Window};

/// The local stack with a prebuilt image (no build, no registry).
fn manifest() -> String {
    pinned_manifest(&fake_digest('a')).display().to_string()
}

/// The answers the proxy changed, without repeats, sorted.
fn hits(proxy: &Proxy) -> Vec<String> {
    let mut h = proxy.altered();
    h.sort();
    h.dedup();
    h
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_role_and_instance_profile_are_waited_for() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto_host(&moto));
    proxy.set(Behaviour {
        role_propagation: Some(Window::Calls(2)),
        profile_propagation: Some(Window::Calls(2)),
        ..Behaviour::default()
    });
    let m = manifest();
    via(&proxy, &["-f", &m, "up"]).expect(0);
    assert_eq!(
        hits(&proxy),
        [
            "AddRoleToInstanceProfile: NoSuchEntity",
            "AttachRolePolicy: NoSuchEntity",
            "CreateAutoScalingGroup: ValidationError",
            "PutRolePolicy: NoSuchEntity",
        ]
    );
    deployer(&moto, &["-f", &m, "plan", "--detailed-exitcode"]).expect(0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_use_of_ecs_creates_its_service_linked_role_once() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto_host(&moto));
    proxy.set(Behaviour {
        ecs_service_linked_role: Some(Window::Calls(2)),
        ..Behaviour::default()
    });
    let m = manifest();
    let up = via(&proxy, &["-f", &m, "up"]);
    up.expect(0);
    assert_eq!(
        hits(&proxy),
        [
            "CreateCluster: InvalidParameterException",
            "CreateService: InvalidParameterException",
            "PutClusterCapacityProviders: InvalidParameterException",
        ]
    );
    let iam = aws_sdk_iam::Client::new(&moto.sdk().await);
    let linked = || async {
        iam.list_roles()
            .path_prefix("/aws-service-role/ecs.amazonaws.com/")
            .send()
            .await
            .unwrap()
            .roles()
            .len()
    };
    assert_eq!(linked().await, 1);

    // It exists now: the next run neither creates it again nor changes anything.
    moto.clear_requests();
    via(&proxy, &["-f", &m, "up"]).expect(0);
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());
    // `down` leaves the account's role alone: other clusters need it.
    via(&proxy, &["-f", &m, "down", "--delete-buckets"]).expect(0);
    assert_eq!(
        linked().await,
        1,
        "the service-linked role is the account's, not the stack's"
    );
    // Back up on an account that has it: found, not created again.
    moto.clear_requests();
    via(&proxy, &["-f", &m, "up"]).expect(0);
    let writes = mutating(&moto.requests());
    assert!(writes.contains(&"CreateCluster".to_string()), "{writes:?}");
    assert!(
        !writes.contains(&"CreateServiceLinkedRole".to_string()),
        "{writes:?}"
    );
    assert_eq!(linked().await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_capacity_provider_is_attached_once_active_and_found_before() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto_host(&moto));
    proxy.set(Behaviour {
        capacity_provider_provisioning: Some(Window::Calls(2)),
        ..Behaviour::default()
    });
    let m = manifest();
    let up = via(&proxy, &["-f", &m, "up"]).expect(0);
    assert_eq!(hits(&proxy), ["DescribeCapacityProviders: PROVISIONING"]);
    // A wait says what it waits for, without `-v`.
    assert!(
        up.stderr
            .contains("ecs:DescribeCapacityProviders: waiting: capacity provider PROVISIONING"),
        "{}",
        up.stderr
    );
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk().await);
    let clusters = ecs
        .describe_clusters()
        .clusters("yolo-local-cluster")
        .send()
        .await
        .unwrap();
    assert_eq!(
        clusters.clusters()[0].capacity_providers(),
        ["yolo-local-capacity"]
    );

    // A provider that is not ACTIVE (yet, or again while it updates) still exists: the
    // plan must not create it a second time.
    proxy.provisioning("yolo-local-capacity");
    let plan = via(
        &proxy,
        &["-f", &m, "plan", "--detailed-exitcode", "-o", "json"],
    );
    assert!(
        proxy
            .altered()
            .iter()
            .filter(|a| a.ends_with("PROVISIONING"))
            .count()
            > 2,
        "the window was not hit"
    );
    plan.expect(0);
}

/// The ECS guide: a capacity provider's group starts empty; instances registered before
/// the provider is attached may never be associated with it. So the group is created at
/// 0 and its minimum raised only after `PutClusterCapacityProviders`.
#[tokio::test(flavor = "multi_thread")]
async fn the_group_starts_empty_and_grows_once_its_provider_is_attached() {
    let moto = Moto::start();
    let m = manifest();
    deployer(&moto, &["-f", &m, "up"]).expect(0);
    let requests = moto.requests();
    let at = |what: &dyn Fn(&testkit::Request) -> bool| requests.iter().position(what);
    let create = at(&|r| r.operation == "CreateAutoScalingGroup").expect("group created");
    let c = &requests[create];
    assert_eq!(
        (c.param("MinSize"), c.param("DesiredCapacity")),
        (Some("0".into()), Some("0".into())),
        "{}",
        c.body
    );
    let attach = at(&|r| r.operation == "PutClusterCapacityProviders").expect("attached");
    let grow = at(&|r| {
        r.operation == "UpdateAutoScalingGroup" && r.param("MinSize").as_deref() == Some("1")
    })
    .expect("the minimum is raised");
    assert!(create < attach && attach < grow, "{create} {attach} {grow}");
    let asg = aws_sdk_autoscaling::Client::new(&moto.sdk().await);
    let g = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names("yolo-local-instances")
        .send()
        .await
        .unwrap();
    let g = &g.auto_scaling_groups()[0];
    assert_eq!((g.min_size(), g.max_size()), (Some(1), Some(6)));

    moto.clear_requests();
    deployer(&moto, &["-f", &m, "up"]).expect(0);
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());
}

/// Every window on at once: a fresh `up` converges in one run, everything exists in
/// moto afterwards, and the next `up` changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_up_converges_in_one_run_with_every_window_on() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto_host(&moto));
    proxy.set(Behaviour::aws_consistency(Window::Calls(2)));
    let m = manifest();
    let up = via(&proxy, &["-f", &m, "up"]).expect(0);
    eprintln!("up with every window on: {:.1?}", up.elapsed);
    assert_eq!(
        hits(&proxy),
        [
            "AddRoleToInstanceProfile: NoSuchEntity",
            "AttachRolePolicy: NoSuchEntity",
            "CreateAutoScalingGroup: ValidationError",
            "CreateCluster: InvalidParameterException",
            "CreateService: InvalidParameterException",
            "DescribeCapacityProviders: PROVISIONING",
            "PutClusterCapacityProviders: InvalidParameterException",
            "PutRolePolicy: NoSuchEntity",
        ]
    );
    let status = deployer(&moto, &["-f", &m, "status", "-o", "json"])
        .expect(0)
        .json();
    let states: Vec<&str> = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert!(states.iter().all(|s| *s == "ok"), "{status:#}");
    let conf = moto.sdk().await;
    let ecs = aws_sdk_ecs::Client::new(&conf);
    let services = ecs
        .describe_services()
        .cluster("yolo-local-cluster")
        .services("yolo-local-predictor")
        .send()
        .await
        .unwrap();
    assert_eq!(services.services()[0].status(), Some("ACTIVE"));
    let iam = aws_sdk_iam::Client::new(&conf);
    let profile = iam
        .get_instance_profile()
        .instance_profile_name("yolo-local-ecs-instance")
        .send()
        .await
        .unwrap();
    assert_eq!(
        profile.instance_profile().unwrap().roles()[0].role_name(),
        "yolo-local-ecs-instance"
    );

    moto.clear_requests();
    via(&proxy, &["-f", &m, "up"]).expect(0);
    assert_eq!(mutating(&moto.requests()), Vec::<String>::new());
}

/// The manifest's `timeouts` bound the waits: a capacity provider that never becomes
/// ACTIVE fails the change after `timeouts.create_s`, naming what it waited for, not
/// after the default quarter of an hour.
#[tokio::test(flavor = "multi_thread")]
async fn a_wait_gives_up_after_the_manifests_timeout() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto_host(&moto));
    proxy.set(Behaviour {
        capacity_provider_provisioning: Some(Window::Calls(u32::MAX)),
        ..Behaviour::default()
    });
    let base = pinned_manifest(&fake_digest('a'));
    let m = edited(
        &base,
        "timeouts",
        &[("\nimage:", "\ntimeouts: {create_s: 2}\nimage:")],
    );
    // Exit code 4: the change timed out (the class every cause shares).
    let up = via(&proxy, &["-f", &m, "up"]).expect(4);
    assert!(
        up.stderr.contains(
            "ecs:DescribeCapacityProviders: gave up after 2s: capacity provider PROVISIONING"
        ),
        "{}",
        up.stderr
    );
}
