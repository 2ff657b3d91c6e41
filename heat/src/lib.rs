//! # heat: the OpenStack Heat (HOT) template engine of occi-so
//!
//! Parses, validates and renders Heat Orchestration Templates as Heat 27
//! does at validation time, so that a caller's mistake is caught in
//! microseconds with Heat's own message, a path and a `line:column`.
//!
//! It is a workspace crate of its own (not `src/heat/`) so that the
//! embedded engine (`backend/`), the plugins and the CLI share it without
//! the server, and so that it builds, tests and benchmarks alone. It is pure
//! and synchronous: no I/O except the `files` the caller hands in, and
//! bounded time and memory on any input ([`Limits`]).
//!
//! ## Parse once, use many times
//!
//! ```
//! use heat::{Environment, Files, Options, ParameterValues, RenderOptions, StackTemplate};
//!
//! let text = r#"
//! heat_template_version: 2018-08-31
//! parameters:
//!   flavor:
//!     type: string
//!     constraints:
//!       - allowed_values: [m1.small, m1.large]
//! resources:
//!   server:
//!     type: OS::Nova::Server
//!     properties:
//!       flavor: {get_param: flavor}
//!       image: cirros
//! outputs:
//!   ip:
//!     value: {get_attr: [server, first_address]}
//! "#;
//! // At plugin registration:
//! let tmpl = StackTemplate::parse(text, Environment::new(), Files::new(), Options::default()).unwrap();
//! tmpl.validate(&ParameterValues::new()).unwrap(); // as Heat's POST /validate
//!
//! // On every request:
//! let params: ParameterValues = [("flavor", "m1.huge")].into_iter().collect();
//! let err = tmpl.define(&params, &Default::default()).unwrap_err();
//! assert_eq!(
//!     err.first().unwrap().message,
//!     "Parameter 'flavor' is invalid: \"m1.huge\" is not an allowed value [\"m1.small\", \"m1.large\"]"
//! );
//! let params: ParameterValues = [("flavor", "m1.small")].into_iter().collect();
//! let rendered = tmpl.render(&params, &RenderOptions::default()).unwrap();
//! assert_eq!(rendered.template["resources"]["server"]["properties"]["flavor"], "m1.small");
//! ```
//!
//! ## For an embedded engine
//!
//! [`StackTemplate::define`] gives a [`StackDefinition`]: the enabled
//! resources with their types after the environment's registry
//! ([`ResourceDefinition`]), the [`Dependencies`] with creation and
//! deletion levels, and evaluation of properties and outputs through a
//! [`Resolver`] that answers `get_resource` and `get_attr`.
//!
//! ```
//! use heat::{Environment, Files, Options, ParameterValues, Resolver, StackIdentity, StackTemplate};
//! use serde_json::{json, Value};
//!
//! struct Running;
//! impl Resolver for Running {
//!     fn resource_id(&self, r: &str) -> Value { json!(format!("{r}-id")) }
//!     fn attribute(&self, r: &str, a: &str) -> Value { json!(format!("{r}.{a}")) }
//! }
//!
//! let text = "heat_template_version: 2016-10-14\nresources:\n  a: {type: OS::Heat::RandomString}\n  b:\n    type: OS::Heat::Value\n    properties: {value: {get_attr: [a, value]}}\noutputs:\n  v: {value: {get_resource: b}}\n";
//! let tmpl = StackTemplate::parse(text, Environment::new(), Files::new(), Options::heat()).unwrap();
//! let def = tmpl.define(&ParameterValues::new(), &StackIdentity::default()).unwrap();
//! assert_eq!(def.dependencies().create_levels().unwrap(), vec![vec!["a"], vec!["b"]]);
//! assert_eq!(def.properties("b", &Running).unwrap(), json!({"value": "a.value"}));
//! assert_eq!(def.outputs(&Running)[0].value.as_ref().unwrap(), &json!("b-id"));
//! ```

#![warn(missing_docs)]

pub mod environment;
pub mod error;
pub mod eval;
pub mod files;
pub mod function;
pub mod graph;
pub mod parameter;
pub mod pyfmt;
pub mod resource_types;
pub mod stack;
pub mod template;
pub mod version;
pub mod yaml;

pub use environment::{Environment, Mapping, ResolvedType, ResourceRegistry};
pub use error::{Error, ErrorKind, Errors, Path, Position, Segment};
pub use eval::{Files, Resolver};
pub use function::{Expr, Func};
pub use graph::Dependencies;
pub use parameter::{ParamType, ParameterSchema};
pub use resource_types::{PropertySchema, ResourceTypes, TypeSchema};
pub use stack::{
    DeletionPolicy, Options, OutputValue, ParameterValues, RenderOptions, RenderedTemplate,
    ResourceDefinition, StackDefinition, StackIdentity, StackTemplate, Strictness, ValidateReport,
};
pub use template::Template;
pub use version::Version;
pub use yaml::Limits;
