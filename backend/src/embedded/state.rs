//! What the engine keeps per stack, kept compact: the shared template, the
//! parameters the caller gave, each resource's status and the few facts
//! its type needs (an id, a random value, an address), the events, and
//! the outputs computed when the stack last settled. Everything else (the
//! definition, attributes, the JSON shapes) is derived when asked for.

use std::sync::{Arc, Mutex, MutexGuard};

use occi_so_sdk::{StackAction, StackInfo, StackState as Phase, StackStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use uuid::Uuid;

use super::engine::OpSlot;
use super::kinds::Kind;
use super::prepared::Prepared;

/// A status reason, stored as a code where Heat's text is derived from
/// the status (`state changed`, `Stack CREATE started`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Reason {
    /// `""`.
    Empty,
    /// `state changed` (every resource transition).
    StateChanged,
    /// `The Resource <name> requires replacement.`
    Replacement,
    /// `Stack <ACTION> started`.
    Started,
    /// `Stack <ACTION> completed successfully`.
    Completed,
    /// Anything else, verbatim (a thin pointer: reasons are rare, events many).
    Text(Arc<String>),
}

impl Reason {
    /// A verbatim reason.
    pub(crate) fn text(s: impl Into<String>) -> Reason {
        Reason::Text(Arc::new(s.into()))
    }

    /// Heat's text, for a subject called `name` in status `status`.
    pub(crate) fn render(&self, name: &str, status: StackStatus) -> String {
        match self {
            Reason::Empty => String::new(),
            Reason::StateChanged => "state changed".into(),
            Reason::Replacement => format!("The Resource {name} requires replacement."),
            Reason::Started => format!("Stack {} started", action_text(status.action)),
            Reason::Completed => {
                format!(
                    "Stack {} completed successfully",
                    action_text(status.action)
                )
            }
            Reason::Text(t) => t.to_string(),
        }
    }
}

/// `CREATE` for [`StackAction::Create`], and so on.
pub(crate) fn action_text(a: StackAction) -> &'static str {
    match a {
        StackAction::Init => "INIT",
        StackAction::Create => "CREATE",
        StackAction::Update => "UPDATE",
        StackAction::Delete => "DELETE",
        StackAction::Rollback => "ROLLBACK",
        StackAction::Suspend => "SUSPEND",
        StackAction::Resume => "RESUME",
        StackAction::Adopt => "ADOPT",
        StackAction::Snapshot => "SNAPSHOT",
        StackAction::Check => "CHECK",
        StackAction::Restore => "RESTORE",
    }
}

/// A resource's physical id, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Physical {
    /// None yet (`""`).
    None,
    /// Heat's physical resource name, from the short id.
    Name(u64),
    /// A UUID (a cloud resource, a nested stack, a software config).
    Uuid(Uuid),
    /// Anything else (a key pair's name, `router:subnet_id=...`).
    Text(Arc<str>),
}

impl Physical {
    /// Heat's text for it, in the stack named `stack`.
    pub(crate) fn render(&self, stack: &str, resource: &str) -> String {
        match self {
            Physical::None => String::new(),
            Physical::Name(short) => super::ids::physical_name(stack, resource, *short),
            Physical::Uuid(u) => u.to_string(),
            Physical::Text(t) => t.to_string(),
        }
    }

    /// Whether the resource has one.
    pub(crate) fn is_some(&self) -> bool {
        !matches!(self, Physical::None)
    }
}

/// A fixed address of a port or a server's own port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FixedIp {
    /// The subnet it is on.
    pub subnet_id: Box<str>,
    /// The address.
    pub ip: u32,
    /// Taken from a configured pool (given back on delete).
    pub pooled: Option<PoolKind>,
}

/// Which configured pool an address came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum PoolKind {
    /// The private network's.
    Private,
    /// The floating network's.
    Floating,
}

/// A port (Neutron's, or the one Nova makes for a server's `network:`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PortData {
    /// The port's id (for Neutron ports, the resource's physical id too).
    pub id: Uuid,
    /// Its `name` (empty: Heat's physical name).
    pub name: Box<str>,
    /// Its network's id.
    pub network_id: Box<str>,
    /// Its network's name.
    pub network_name: Box<str>,
    /// Its fixed addresses.
    pub fixed_ips: Vec<FixedIp>,
}

/// How a server is attached to a network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Nic {
    /// Through a port resource (its physical id).
    Port(Box<str>),
    /// Through a port Nova made for it.
    Own(PortData),
}

/// A server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServerData {
    /// Its name.
    pub name: Box<str>,
    /// Its network attachments, in `networks` order.
    pub nics: Vec<Nic>,
    /// `image` and `flavor` as given (for `show`).
    pub image: Box<str>,
    /// The flavor.
    pub flavor: Box<str>,
}

/// A floating IP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FloatingIpData {
    /// The address.
    pub ip: u32,
    /// Taken from the floating pool.
    pub pooled: bool,
    /// The external network's id.
    pub network_id: Box<str>,
    /// The port it is associated with (property `port_id`).
    pub port_id: Option<Box<str>>,
}

/// A key pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyPairData {
    /// The public key.
    pub public_key: Box<str>,
    /// The private key, when Nova generated the pair.
    pub private_key: Option<Box<str>>,
}

/// A nested stack: a template resource's, or a resource group's members.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct NestedStack {
    /// Its id.
    pub id: Uuid,
    /// Its name (`<stack>-<resource>-<short id>`).
    pub name: Box<str>,
    /// Its resources.
    pub tree: Tree,
    /// Its outputs as last computed (a template resource's attributes).
    pub outputs: serde_json::Map<String, Value>,
}

/// What a resource's type keeps once it exists.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Data {
    /// Nothing.
    None,
    /// A string: a random string, a TestResource's output, a software
    /// config's text, a wait-condition handle's token.
    Text(Box<str>),
    /// Any JSON: the resolved properties of a type whose attributes echo
    /// them (networks, volumes, routers...).
    Json(Box<Value>),
    /// Any JSON as text (a Value's value: kept compact, read rarely).
    JsonText(Box<str>),
    /// A port.
    Port(Box<PortData>),
    /// A server.
    Server(Box<ServerData>),
    /// A floating IP.
    FloatingIp(Box<FloatingIpData>),
    /// A key pair.
    KeyPair(Box<KeyPairData>),
    /// A nested stack.
    Nested(Box<NestedStack>),
}

/// One resource of a stack.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ResourceState {
    /// Its name.
    pub name: Arc<str>,
    /// Its `type` as written.
    pub type_name: Arc<str>,
    /// How it is simulated.
    pub kind: Kind,
    /// Its status.
    pub status: StackStatus,
    /// Its status reason.
    pub reason: Reason,
    /// The short id of its physical name.
    pub short: u64,
    /// Its physical id.
    pub physical: Physical,
    /// When it was created (seconds since the epoch; 0 = not yet).
    pub created: u32,
    /// When it last changed.
    pub updated: u32,
    /// A digest of the properties (and metadata) it was last created or
    /// updated with: unchanged means nothing to do on an update.
    pub props_digest: u64,
    /// A digest of the properties that cannot change in place: changed
    /// means it is replaced.
    pub fixed_digest: u64,
    /// What its type keeps.
    pub data: Data,
    /// No longer in the stack's definition: deleted when the update ends.
    pub orphan: bool,
    /// The resource this one replaces, deleted when the update ends (or
    /// brought back by a rollback).
    pub replaced: Option<Box<ResourceState>>,
}

impl ResourceState {
    /// A resource not created yet (`INIT_COMPLETE`).
    pub(crate) fn new(name: Arc<str>, type_name: Arc<str>, kind: Kind) -> Self {
        ResourceState {
            name,
            type_name,
            kind,
            status: StackStatus::new(StackAction::Init, Phase::Complete),
            reason: Reason::Empty,
            short: super::ids::new_short_id(),
            physical: Physical::None,
            created: 0,
            updated: 0,
            props_digest: 0,
            fixed_digest: 0,
            data: Data::None,
            orphan: false,
            replaced: None,
        }
    }

    /// Whether it exists in the (simulated) cloud: created, and neither
    /// deleted nor never started.
    pub(crate) fn exists(&self) -> bool {
        self.physical.is_some() && self.status.action != StackAction::Delete
    }

    /// Whether it was ever acted on (a create was at least attempted).
    pub(crate) fn attempted(&self) -> bool {
        self.status.action != StackAction::Init
    }

    /// Its nested stack, for template resources and groups.
    pub(crate) fn nested(&self) -> Option<&NestedStack> {
        match &self.data {
            Data::Nested(n) => Some(n),
            _ => None,
        }
    }
}

/// The resources of a stack (or nested stack), in definition order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Tree {
    /// The resources.
    pub resources: Vec<ResourceState>,
}

impl Tree {
    /// Resource `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&ResourceState> {
        self.resources.iter().find(|r| &*r.name == name)
    }

    /// Resource `name`, to change.
    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut ResourceState> {
        self.resources.iter_mut().find(|r| &*r.name == name)
    }

    /// The tree of the nested stack at `path` (resource names, outermost
    /// first) below this one.
    pub(crate) fn at(&self, path: &[Arc<str>]) -> Option<&Tree> {
        match path.split_first() {
            None => Some(self),
            Some((first, rest)) => self.get(first)?.nested()?.tree.at(rest),
        }
    }

    /// [`Tree::at`], to change.
    pub(crate) fn at_mut(&mut self, path: &[Arc<str>]) -> Option<&mut Tree> {
        match path.split_first() {
            None => Some(self),
            Some((first, rest)) => match &mut self.get_mut(first)?.data {
                Data::Nested(n) => n.tree.at_mut(rest),
                _ => None,
            },
        }
    }

    /// Every resource here and in nested stacks, depth first.
    pub(crate) fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a ResourceState)) {
        for r in &self.resources {
            f(r);
            if let Some(old) = &r.replaced {
                f(old);
            }
            if let Some(n) = r.nested() {
                n.tree.walk(f);
            }
        }
    }
}

/// One event, compact; rendered to Heat's shape when listed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Event {
    /// When (seconds since the epoch).
    pub time: u32,
    /// The resource, or `None` for the stack itself.
    pub subject: Option<Arc<str>>,
    /// The status it moved to.
    pub status: StackStatus,
    /// Why.
    pub reason: Reason,
    /// The physical id at that moment.
    pub physical: Physical,
}

/// The caller's inputs a stack was last created or updated with.
#[derive(Clone, Debug)]
pub(crate) struct Inputs {
    /// The shared parsed template.
    pub prepared: Arc<Prepared>,
    /// Parameter values as given (not the defaults).
    pub params: Box<[(Box<str>, Box<str>)]>,
    /// `timeout_mins`.
    pub timeout_mins: Option<u32>,
    /// `disable_rollback`.
    pub disable_rollback: bool,
    /// Tags.
    pub tags: Box<[Box<str>]>,
}

impl Inputs {
    /// The parameters as the heat crate takes them.
    pub(super) fn parameter_values(&self) -> heat::ParameterValues {
        self.params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// An output as computed when the stack settled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum OutputValue {
    /// Its value.
    Value(Value),
    /// Heat's `output_error`.
    Error(Box<str>),
}

/// Everything about one stack that changes.
pub(crate) struct StackState {
    /// Its status.
    pub status: StackStatus,
    /// Its status reason.
    pub reason: Reason,
    /// `creation_time`.
    pub created: u32,
    /// `updated_time` (0 = never).
    pub updated: u32,
    /// `deletion_time` (0 = not deleted).
    pub deleted: u32,
    /// What it was last asked to be.
    pub inputs: Inputs,
    /// What it was before the update in progress (for a rollback).
    pub previous: Option<Box<Inputs>>,
    /// Its resources.
    pub tree: Tree,
    /// Its events, oldest first.
    pub events: Vec<Event>,
    /// How many events were purged from the front (event ids stay stable).
    pub events_purged: u64,
    /// Outputs computed when it last settled, parallel to the template's
    /// (a JSON list of [`OutputValue`]s: one allocation, read rarely).
    pub outputs: Option<Box<str>>,
    /// While an operation runs: the definition it works towards (outputs
    /// are then computed live, as Heat does).
    pub live: Option<Arc<heat::StackDefinition>>,
    /// The operation in progress.
    pub op: Option<Box<OpSlot>>,
    /// Bumped by every new operation; an older one that is still finishing
    /// leaves the stack's status alone.
    pub generation: u64,
    /// Watchers' channel, made on the first watch and dropped once the
    /// stack settles with nobody watching.
    pub watch: Option<Arc<watch::Sender<StackInfo>>>,
}

/// One stack: identity (fixed) and state (behind a lock never held across
/// an `.await`).
pub(crate) struct StackCell {
    /// The project (tenant) it belongs to.
    pub project: Arc<str>,
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: Arc<str>,
    /// Its state.
    pub state: Mutex<StackState>,
}

impl StackCell {
    /// The state, locked (a poisoned lock is recovered: the state is
    /// always left consistent between statements that change it).
    pub(super) fn lock(&self) -> MutexGuard<'_, StackState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
