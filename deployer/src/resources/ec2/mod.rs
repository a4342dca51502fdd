//! EC2, one file per resource kind: the security groups (`security_group`, their
//! rules in `ingress`) and the launch template of the ECS container instances
//! (`launch_template`, the settings of its versions in `template_data`). The network the
//! serverful target runs in is looked up, never created (`network`), as are the
//! instance type's architectures and the ECS-optimized AMI (`ami`). What they share
//! lives here: the conversion between the stack's tags and EC2's.

mod ami;
mod ingress;
mod launch_template;
mod network;
mod security_group;
mod template_data;

// The module's paths from before the split (`ec2::X`), whether or not the crate uses
// them today.
#[allow(unused_imports)]
pub use self::{
    ami::{ami_parameter, instance_architectures, recommended_ami},
    ingress::{Rule, Source},
    launch_template::{LaunchTemplate, Template, TemplateObserved, find_template},
    network::{Network, network, zones_offering},
    security_group::{GroupObserved, SecurityGroup, group_id},
    template_data::{TemplateData, user_data},
};
