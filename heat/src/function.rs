//! Intrinsic functions: which names each template version knows (exactly as
//! Heat's per-version function tables), and the parsed form of a template
//! snippet ([`Expr`]) with its function calls found and their argument
//! shapes checked, as Heat does when it parses a template.

use serde_json::Value;

use crate::error::{Error, ErrorKind, Path, Segment};
use crate::version::Version;

/// An intrinsic function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Func {
    GetParam,
    GetResource,
    GetAttr,
    GetFile,
    StrReplace,
    StrReplaceStrict,
    StrReplaceVstrict,
    ListJoin,
    StrSplit,
    Repeat,
    MapMerge,
    MapReplace,
    Digest,
    Equals,
    Not,
    And,
    Or,
    If,
    Contains,
    Filter,
    MakeUrl,
    ListConcat,
    ListConcatUnique,
    Yaql,
    ResourceFacade,
    /// CFN `Ref` (2013-05-23 only): a resource if one has that name, else a parameter.
    Ref,
    FnGetAzs,
    FnSelect,
    FnJoin,
    FnSplit,
    FnReplace,
    FnBase64,
    FnMemberListToMap,
    FnResourceFacade,
}

const ALL_FUNCS: &[(&str, Func)] = &[
    ("get_param", Func::GetParam),
    ("get_resource", Func::GetResource),
    ("get_attr", Func::GetAttr),
    ("get_file", Func::GetFile),
    ("str_replace", Func::StrReplace),
    ("str_replace_strict", Func::StrReplaceStrict),
    ("str_replace_vstrict", Func::StrReplaceVstrict),
    ("list_join", Func::ListJoin),
    ("str_split", Func::StrSplit),
    ("repeat", Func::Repeat),
    ("map_merge", Func::MapMerge),
    ("map_replace", Func::MapReplace),
    ("digest", Func::Digest),
    ("equals", Func::Equals),
    ("not", Func::Not),
    ("and", Func::And),
    ("or", Func::Or),
    ("if", Func::If),
    ("contains", Func::Contains),
    ("filter", Func::Filter),
    ("make_url", Func::MakeUrl),
    ("list_concat", Func::ListConcat),
    ("list_concat_unique", Func::ListConcatUnique),
    ("yaql", Func::Yaql),
    ("resource_facade", Func::ResourceFacade),
    ("Ref", Func::Ref),
    ("Fn::GetAZs", Func::FnGetAzs),
    ("Fn::Select", Func::FnSelect),
    ("Fn::Join", Func::FnJoin),
    ("Fn::Split", Func::FnSplit),
    ("Fn::Replace", Func::FnReplace),
    ("Fn::Base64", Func::FnBase64),
    ("Fn::MemberListToMap", Func::FnMemberListToMap),
    ("Fn::ResourceFacade", Func::FnResourceFacade),
];

/// The CFN-style functions HOT 2014-10-16 removed (Heat rejects them in
/// later versions instead of treating them as data).
const REMOVED_2014: &[&str] = &[
    "Fn::GetAZs",
    "Fn::Join",
    "Fn::Split",
    "Fn::Replace",
    "Fn::Base64",
    "Fn::MemberListToMap",
    "Fn::ResourceFacade",
    "Ref",
];

impl Func {
    /// The function's name in templates.
    pub fn name(self) -> &'static str {
        ALL_FUNCS
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// The function with this template name, in any version.
    pub fn from_name(name: &str) -> Option<Func> {
        use Func::*;
        Some(match name {
            "get_param" => GetParam,
            "get_resource" => GetResource,
            "get_attr" => GetAttr,
            "get_file" => GetFile,
            "str_replace" => StrReplace,
            "str_replace_strict" => StrReplaceStrict,
            "str_replace_vstrict" => StrReplaceVstrict,
            "list_join" => ListJoin,
            "str_split" => StrSplit,
            "repeat" => Repeat,
            "map_merge" => MapMerge,
            "map_replace" => MapReplace,
            "digest" => Digest,
            "equals" => Equals,
            "not" => Not,
            "and" => And,
            "or" => Or,
            "if" => If,
            "contains" => Contains,
            "filter" => Filter,
            "make_url" => MakeUrl,
            "list_concat" => ListConcat,
            "list_concat_unique" => ListConcatUnique,
            "yaql" => Yaql,
            "resource_facade" => ResourceFacade,
            "Ref" => Ref,
            "Fn::GetAZs" => FnGetAzs,
            "Fn::Select" => FnSelect,
            "Fn::Join" => FnJoin,
            "Fn::Split" => FnSplit,
            "Fn::Replace" => FnReplace,
            "Fn::Base64" => FnBase64,
            "Fn::MemberListToMap" => FnMemberListToMap,
            "Fn::ResourceFacade" => FnResourceFacade,
            _ => return None,
        })
    }

    /// The first version whose templates may call this function outside
    /// conditions (`None` for condition-only functions and CFN ones).
    pub fn since(self) -> Option<Version> {
        use Func::*;
        use Version as V;
        Some(match self {
            GetParam | GetResource | GetAttr | GetFile | StrReplace | ListJoin | ResourceFacade => {
                V::V2013_05_23
            }
            Repeat | Digest => V::V2015_04_30,
            StrSplit => V::V2015_10_15,
            MapMerge => V::V2016_04_08,
            Yaql | MapReplace | If => V::V2016_10_14,
            Filter | StrReplaceStrict => V::V2017_02_24,
            MakeUrl | ListConcat | StrReplaceVstrict | ListConcatUnique | Contains => {
                V::V2017_09_01
            }
            Equals | Not | And | Or => return None,
            Ref | FnGetAzs | FnSelect | FnJoin | FnSplit | FnReplace | FnBase64
            | FnMemberListToMap | FnResourceFacade => return None,
        })
    }
}

/// What a function name means in one version and context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A function of this version.
    Func(Func),
    /// A function this version removed: Heat rejects it when validating.
    Removed,
    /// A function not allowed in conditions (Heat: "is invalid in this context").
    Invalid,
    /// Not a function here: the single-key mapping is plain data.
    NotAFunction,
}

/// Where a snippet is parsed: most sections use the version's function
/// table, conditions use the condition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Resources, outputs, `if` branches.
    Normal,
    /// The `conditions` section, resource/output `condition`, `if`'s first argument.
    Condition,
}

/// What `name` means for `version` in `ctx`, exactly as Heat's function tables say.
pub fn lookup(version: Version, ctx: Context, name: &str) -> Lookup {
    let normal = normal_lookup(version, name);
    match ctx {
        Context::Normal => normal,
        Context::Condition => {
            if version < Version::V2016_10_14 {
                return match normal {
                    Lookup::Func(_) => Lookup::Invalid,
                    other => other,
                };
            }
            let cond = match name {
                "get_param" => Some(Func::GetParam),
                "equals" => Some(Func::Equals),
                "not" => Some(Func::Not),
                "and" => Some(Func::And),
                "or" => Some(Func::Or),
                "yaql" if version >= Version::V2017_09_01 => Some(Func::Yaql),
                "contains" if version >= Version::V2017_09_01 => Some(Func::Contains),
                _ => None,
            };
            match (cond, normal) {
                (Some(f), _) => Lookup::Func(f),
                (None, Lookup::Func(_)) => Lookup::Invalid,
                (None, other) => other,
            }
        }
    }
}

fn normal_lookup(version: Version, name: &str) -> Lookup {
    let Some(f) = Func::from_name(name) else {
        return Lookup::NotAFunction;
    };
    if version == Version::V2013_05_23 {
        return match f {
            Func::GetParam
            | Func::GetResource
            | Func::GetAttr
            | Func::GetFile
            | Func::StrReplace
            | Func::ListJoin
            | Func::ResourceFacade
            | Func::Ref
            | Func::FnGetAzs
            | Func::FnSelect
            | Func::FnJoin
            | Func::FnSplit
            | Func::FnReplace
            | Func::FnBase64
            | Func::FnMemberListToMap
            | Func::FnResourceFacade => Lookup::Func(f),
            _ => Lookup::NotAFunction,
        };
    }
    if REMOVED_2014.contains(&name) {
        return Lookup::Removed;
    }
    if f == Func::FnSelect {
        return if version < Version::V2015_10_15 {
            Lookup::Func(f)
        } else {
            Lookup::Removed
        };
    }
    match f.since() {
        Some(v) if v <= version => Lookup::Func(f),
        _ => Lookup::NotAFunction,
    }
}

/// A parsed template snippet: data with the function calls found.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Data with no function call inside.
    Lit(Value),
    /// A sequence holding at least one call.
    List(Vec<Expr>),
    /// A mapping holding at least one call (key order kept).
    Map(Vec<(String, Expr)>),
    /// A function call.
    Call(Box<Call>),
    /// A function this version removed (Heat rejects it when validating).
    Removed(Box<Removed>),
}

/// A borrowed path step, for walks that rarely need a real [`Path`].
enum SegRef<'a> {
    Key(&'a str),
    Index(usize),
}

/// One function call in a template.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Which function.
    pub func: Func,
    /// Its parsed arguments.
    pub args: Expr,
    /// Where the call is (the path of the mapping holding the function key).
    pub path: Path,
}

/// A call of a function the template's version removed.
#[derive(Clone, Debug, PartialEq)]
pub struct Removed {
    /// The function name as written.
    pub name: String,
    /// The raw arguments.
    pub args: Value,
    /// Where it is.
    pub path: Path,
}

impl Expr {
    /// True when this snippet contains no function call.
    pub fn is_lit(&self) -> bool {
        matches!(self, Expr::Lit(_))
    }

    /// The snippet as written in the template (function calls as
    /// single-key mappings).
    pub fn to_value(&self) -> Value {
        match self {
            Expr::Lit(v) => v.clone(),
            Expr::List(items) => Value::Array(items.iter().map(Expr::to_value).collect()),
            Expr::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
            Expr::Call(c) => {
                let mut m = serde_json::Map::new();
                m.insert(c.func.name().to_string(), c.args.to_value());
                Value::Object(m)
            }
            Expr::Removed(r) => {
                let mut m = serde_json::Map::new();
                m.insert(r.name.clone(), r.args.clone());
                Value::Object(m)
            }
        }
    }

    /// Calls `f` on every call in this snippet, outermost first.
    pub fn for_each_call<'a>(&'a self, f: &mut dyn FnMut(&'a Call)) {
        match self {
            Expr::Lit(_) | Expr::Removed(_) => {}
            Expr::List(items) => items.iter().for_each(|e| e.for_each_call(f)),
            Expr::Map(entries) => entries.iter().for_each(|(_, e)| e.for_each_call(f)),
            Expr::Call(c) => {
                f(c);
                c.args.for_each_call(f);
            }
        }
    }

    /// The elements when this is a (literal or parsed) sequence.
    pub fn as_list(&self) -> Option<Vec<Expr>> {
        match self {
            Expr::List(items) => Some(items.clone()),
            Expr::Lit(Value::Array(items)) => Some(items.iter().cloned().map(Expr::Lit).collect()),
            _ => None,
        }
    }

    /// The entries when this is a (literal or parsed) mapping.
    pub fn as_map(&self) -> Option<Vec<(String, Expr)>> {
        match self {
            Expr::Map(entries) => Some(entries.clone()),
            Expr::Lit(Value::Object(m)) => Some(
                m.iter()
                    .map(|(k, v)| (k.clone(), Expr::Lit(v.clone())))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// Looks up `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<Expr> {
        match self {
            Expr::Map(entries) => entries
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
            Expr::Lit(Value::Object(m)) => m.get(key).cloned().map(Expr::Lit),
            _ => None,
        }
    }

    /// The literal string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Expr::Lit(Value::String(s)) => Some(s),
            _ => None,
        }
    }
}

/// Parses snippets of one template: finds function calls, checks their
/// argument shapes like Heat's function constructors, and collects the
/// mistakes Heat would not catch but a careful user wants to hear about
/// (strict findings).
pub struct ExprParser<'a> {
    /// The template's version.
    pub version: Version,
    /// Errors Heat reports when parsing.
    pub errors: &'a mut Vec<Error>,
    /// Strict findings: misspelt function names and functions of other
    /// versions, which Heat silently treats as data.
    pub strict: &'a mut Vec<Error>,
}

impl ExprParser<'_> {
    /// Parses `v` found at `path`.
    pub fn parse(&mut self, v: &Value, path: &Path, ctx: Context) -> Expr {
        self.parse_owned(v.clone(), path, ctx)
    }

    /// Parses `v` (taking it, so no data is copied) found at `path`.
    pub fn parse_owned(&mut self, v: Value, path: &Path, ctx: Context) -> Expr {
        self.strict_scan(&v, path, ctx);
        let mut p = path.clone();
        match self.parse_ref(&v, &mut p, ctx) {
            Some(e) => e,
            None => Expr::Lit(v),
        }
    }

    /// One pass over a snippet for the strict findings (misspelt function
    /// names, functions of other versions), following `if` into condition
    /// context as parsing does. The path is kept as borrowed segments and
    /// only built when there is something to report.
    fn strict_scan(&mut self, v: &Value, path: &Path, ctx: Context) {
        let mut stack: Vec<SegRef<'_>> = Vec::new();
        self.strict_walk(v, path, &mut stack, ctx);
    }

    fn strict_walk<'v>(
        &mut self,
        v: &'v Value,
        base: &Path,
        stack: &mut Vec<SegRef<'v>>,
        ctx: Context,
    ) {
        let here = |stack: &[SegRef<'_>]| {
            let mut p = base.clone();
            for s in stack {
                match s {
                    SegRef::Key(k) => p.0.push(Segment::Key((*k).to_string())),
                    SegRef::Index(i) => p.0.push(Segment::Index(*i)),
                }
            }
            p
        };
        match v {
            Value::Object(m) => {
                if m.len() == 1 {
                    if let Some((k, args)) = m.iter().next() {
                        match lookup(self.version, ctx, k) {
                            Lookup::NotAFunction
                                if Func::from_name(k).is_some()
                                    || nearest_function(self.version, ctx, k).is_some() =>
                            {
                                let p = here(stack);
                                self.strict_check(k, &p, ctx);
                            }
                            Lookup::Func(Func::If) => {
                                stack.push(SegRef::Key(k));
                                if let Value::Array(items) = args {
                                    for (i, a) in items.iter().enumerate() {
                                        let c = if i == 0 { Context::Condition } else { ctx };
                                        stack.push(SegRef::Index(i));
                                        self.strict_walk(a, base, stack, c);
                                        stack.pop();
                                    }
                                } else {
                                    self.strict_walk(args, base, stack, ctx);
                                }
                                stack.pop();
                                return;
                            }
                            _ => {}
                        }
                    }
                }
                for (k, x) in m {
                    stack.push(SegRef::Key(k));
                    self.strict_walk(x, base, stack, ctx);
                    stack.pop();
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    stack.push(SegRef::Index(i));
                    self.strict_walk(x, base, stack, ctx);
                    stack.pop();
                }
            }
            _ => {}
        }
    }

    /// Parses by reference in one pass: `None` when the snippet holds no
    /// function call (the caller then keeps the value as it is, uncopied);
    /// otherwise the expression, in which only the plain-data siblings of
    /// calls are copied. The path grows and shrinks as the walk goes.
    fn parse_ref(&mut self, v: &Value, path: &mut Path, ctx: Context) -> Option<Expr> {
        match v {
            Value::Object(m) => {
                if m.len() == 1 {
                    if let Some((name, args)) = m.iter().next() {
                        match lookup(self.version, ctx, name) {
                            Lookup::Func(func) => {
                                path.0.push(Segment::Key(name.clone()));
                                let e = self.call(func, args, path, ctx);
                                path.0.pop();
                                return Some(e);
                            }
                            Lookup::Removed => {
                                return Some(Expr::Removed(Box::new(Removed {
                                    path: path.key(name.as_str()),
                                    name: name.clone(),
                                    args: args.clone(),
                                })));
                            }
                            Lookup::Invalid => {
                                self.errors.push(Error::validation(
                                    format!(
                                        "{}: The function \"{name}\" is invalid in this context",
                                        path.key(name.as_str())
                                    ),
                                    path.key(name.as_str()),
                                ));
                                return None;
                            }
                            Lookup::NotAFunction => {}
                        }
                    }
                }
                let mut parsed: Vec<Option<Expr>> = Vec::new();
                let mut any = false;
                for (i, (k, val)) in m.iter().enumerate() {
                    path.0.push(Segment::Key(k.clone()));
                    let r = self.parse_ref(val, path, ctx);
                    path.0.pop();
                    if r.is_some() && !any {
                        any = true;
                        parsed = (0..i).map(|_| None).collect();
                    }
                    if any {
                        parsed.push(r);
                    }
                }
                if !any {
                    return None;
                }
                Some(Expr::Map(
                    m.iter()
                        .zip(parsed)
                        .map(|((k, val), e)| {
                            (k.clone(), e.unwrap_or_else(|| Expr::Lit(val.clone())))
                        })
                        .collect(),
                ))
            }
            Value::Array(items) => {
                let mut parsed: Vec<Option<Expr>> = Vec::new();
                let mut any = false;
                for (i, val) in items.iter().enumerate() {
                    path.0.push(Segment::Index(i));
                    let r = self.parse_ref(val, path, ctx);
                    path.0.pop();
                    if r.is_some() && !any {
                        any = true;
                        parsed = (0..i).map(|_| None).collect();
                    }
                    if any {
                        parsed.push(r);
                    }
                }
                if !any {
                    return None;
                }
                Some(Expr::List(
                    items
                        .iter()
                        .zip(parsed)
                        .map(|(val, e)| e.unwrap_or_else(|| Expr::Lit(val.clone())))
                        .collect(),
                ))
            }
            _ => None,
        }
    }

    fn call(&mut self, func: Func, args: &Value, path: &mut Path, ctx: Context) -> Expr {
        if let Err(msg) = check_args(self.version, func, args) {
            self.errors
                .push(Error::validation(format!("{path}: {msg}"), path.clone()));
        }
        // `if` parses its first argument as a condition.
        let parsed_args = match (func, args) {
            (Func::If, Value::Array(items)) if !items.is_empty() => {
                let mut out = Vec::with_capacity(items.len());
                for (i, a) in items.iter().enumerate() {
                    let c = if i == 0 || ctx == Context::Condition {
                        Context::Condition
                    } else {
                        Context::Normal
                    };
                    path.0.push(Segment::Index(i));
                    out.push(
                        self.parse_ref(a, path, c)
                            .unwrap_or_else(|| Expr::Lit(a.clone())),
                    );
                    path.0.pop();
                }
                Expr::List(out)
            }
            (_, args) => self
                .parse_ref(args, path, ctx)
                .unwrap_or_else(|| Expr::Lit(args.clone())),
        };
        Expr::Call(Box::new(Call {
            func,
            args: parsed_args,
            path: path.clone(),
        }))
    }

    fn strict_check(&mut self, name: &str, path: &Path, ctx: Context) {
        if name.len() > 40 || name.contains(' ') {
            return;
        }
        let here = || path.key(name);
        if let Some(f) = Func::from_name(name) {
            let here = here();
            let msg = match (f.since(), ctx) {
                (Some(since), _) if since > self.version => format!(
                    "{here}: \"{name}\" is not a function in heat_template_version {} (it was added in {}), so Heat takes this mapping as plain data",
                    self.version, since
                ),
                (None, Context::Normal) if matches!(f, Func::Equals | Func::Not | Func::And | Func::Or) => format!(
                    "{here}: \"{name}\" is a condition function, valid only in conditions; here Heat takes this mapping as plain data"
                ),
                _ => format!(
                    "{here}: \"{name}\" is not a function in heat_template_version {}, so Heat takes this mapping as plain data",
                    self.version
                ),
            };
            self.strict.push(Error::validation(msg, here));
            return;
        }
        if let Some(near) = nearest_function(self.version, ctx, name) {
            let here = here();
            self.strict.push(Error::validation(
                format!(
                    "{here}: unknown function \"{name}\" (did you mean \"{near}\"?); Heat takes this mapping as plain data"
                ),
                here,
            ));
        }
    }
}

/// The function of this version and context whose name is a likely typo of `name`.
fn nearest_function(version: Version, ctx: Context, name: &str) -> Option<&'static str> {
    if name.len() < 3 || name.len() > 40 {
        return None;
    }
    let mut best: Option<(usize, &'static str)> = None;
    for (n, _) in ALL_FUNCS {
        if !matches!(lookup(version, ctx, n), Lookup::Func(_)) {
            continue;
        }
        let limit = if n.len() >= 8 { 2 } else { 1 };
        if n.len().abs_diff(name.len()) > limit {
            continue;
        }
        let d = edit_distance(&name.to_ascii_lowercase(), n);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, n));
        }
    }
    best.map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn is_seq(v: &Value) -> bool {
    v.is_array()
}

/// Heat's constructor-time checks of a function's arguments (before any
/// value is known). Returns Heat's message on failure.
pub fn check_args(version: Version, func: Func, args: &Value) -> Result<(), String> {
    let name = func.name();
    match func {
        Func::GetAttr => check_get_attr(version, name, args),
        Func::StrReplace | Func::StrReplaceStrict | Func::StrReplaceVstrict => {
            check_str_replace(name, args)
        }
        Func::FnReplace => check_fn_replace(name, args),
        Func::ListJoin | Func::FnJoin => {
            let multiple = func == Func::ListJoin && version >= Version::V2015_10_15;
            check_join(name, multiple, args)
        }
        Func::ResourceFacade | Func::FnResourceFacade => match args.as_str() {
            Some("metadata" | "deletion_policy" | "update_policy") => Ok(()),
            _ => Err(format!(
                "Incorrect arguments to \"{name}\" should be one of: metadata, deletion_policy, update_policy"
            )),
        },
        Func::Repeat => check_repeat(version, name, args),
        Func::StrSplit => match args {
            Value::String(_) | Value::Object(_) => Err(format!(
                "Incorrect arguments to \"{name}\" should be: \"{name}\" : [ \",\", \"apples,pears\", <index>]"
            )),
            _ => Ok(()),
        },
        Func::Yaql => check_yaql(name, args),
        Func::Equals => match args {
            Value::Array(a) if a.len() == 2 => Ok(()),
            _ => Err(format!(
                "Arguments to \"{name}\" must be of the form: [value_1, value_2]"
            )),
        },
        Func::If => check_if(version, name, args),
        Func::Not => {
            if args.is_null() {
                Err(format!("Argument to \"{name}\" must be a condition"))
            } else {
                Ok(())
            }
        }
        Func::And | Func::Or => match args {
            Value::Array(a) if a.len() >= 2 => Ok(()),
            Value::Array(_) => Err(format!(
                "The minimum number of condition arguments to \"{name}\" is 2."
            )),
            _ => Err(format!(
                "Arguments to \"{name}\" must be a list of conditions"
            )),
        },
        Func::Filter => match args {
            Value::Array(a) if a.len() == 2 => Ok(()),
            Value::Array(a) => Err(format!(
                "\"{name}\" expected 2 arguments of the form [values, sequence] but got {} arguments instead",
                a.len()
            )),
            _ => Err(format!("Argument to \"{name}\" must be a list")),
        },
        Func::Contains => match args {
            Value::Array(a) if a.len() == 2 => Ok(()),
            Value::Array(a) if !a.is_empty() => Err(format!(
                "Arguments to \"{name}\" must be of the form: [value1, [value1, value2]]"
            )),
            _ => Err(format!(
                "Incorrect arguments to \"{name}\" should be: \"{name}\" : [ \"value1\", [ \"value1\", \"value2\"]]"
            )),
        },
        Func::FnSelect => match args {
            Value::Array(a) if a.len() == 2 => Ok(()),
            _ => Err(format!(
                "Arguments to \"{name}\" must be of the form [index, collection]"
            )),
        },
        Func::FnSplit => match args {
            Value::Array(a) if a.len() == 2 => Ok(()),
            _ => Err(format!(
                "Incorrect arguments to \"{name}\" should be: \"{name}\" : [ \",\", \"str1,str2\"]]"
            )),
        },
        Func::FnMemberListToMap => check_member_list_to_map(name, args),
        Func::MakeUrl => check_make_url(name, args),
        _ => {
            let _ = is_seq;
            Ok(())
        }
    }
}

/// `get_attr`: since 2015-10-15 `[resource]` alone is enough.
fn check_get_attr(version: Version, name: &str, args: &Value) -> Result<(), String> {
    if version >= Version::V2015_10_15 {
        match args {
            Value::Array(a) if a.is_empty() => Err(format!(
                "Arguments to \"{name}\" can be of the next forms: [resource_name] or [resource_name, attribute, (path), ...]"
            )),
            Value::Null => Err(format!(
                "Arguments to \"{name}\" can be of the next forms: [resource_name] or [resource_name, attribute, (path), ...]"
            )),
            Value::Array(_) => Ok(()),
            Value::String(s) if s.chars().count() <= 1 => Ok(()),
            _ => Err(format!("Argument to \"{name}\" must be a list")),
        }
    } else {
        match args {
            Value::Array(a) if a.len() < 2 => Err(format!(
                "Arguments to \"{name}\" must be of the form [resource_name, attribute, (path), ...]"
            )),
            Value::Array(_) => Ok(()),
            _ => Err(format!("Argument to \"{name}\" must be a list")),
        }
    }
}

/// `str_replace` and its strict forms: a map with `template` and `params`.
fn check_str_replace(name: &str, args: &Value) -> Result<(), String> {
    let Value::Object(m) = args else {
        return Err(format!("Arguments to \"{name}\" must be a map"));
    };
    let (Some(params), Some(_)) = (m.get("params"), m.get("template")) else {
        return Err(key_error(&format!(
            "\"{name}\" syntax should be {name}:\n              template: This is var1 template var2\n              params:\n                var1: a\n                var2: string"
        )));
    };
    if !(params.is_object() || is_single_call(params)) {
        return Err(format!("\"{name}\" parameters must be a mapping"));
    }
    Ok(())
}

/// `Fn::Replace`: `[params, template]`.
fn check_fn_replace(name: &str, args: &Value) -> Result<(), String> {
    let example = format!(
        "{{\"{name}\": [ {{\"$var1\": \"foo\", \"%var2%\": \"bar\"}}, \"$var1 is %var2%\"]}}"
    );
    match args {
        Value::Array(a) if a.len() == 2 => {
            if !(a[0].is_object() || is_single_call(&a[0])) {
                return Err(format!("\"{name}\" parameters must be a mapping"));
            }
            Ok(())
        }
        Value::String(_) | Value::Object(_) => Err(format!(
            "Incorrect arguments to \"{name}\" should be: {example}"
        )),
        _ => Err(format!(
            "Incorrect arguments to \"{name}\" should be: {example}"
        )),
    }
}

/// `list_join` (several lists since 2015-10-15) and `Fn::Join`.
fn check_join(name: &str, multiple: bool, args: &Value) -> Result<(), String> {
    let example = if multiple {
        format!("\"{name}\" : [ \" \", [ \"str1\", \"str2\"] ...]")
    } else {
        format!("\"{name}\" : [ \" \", [ \"str1\", \"str2\"]]")
    };
    match args {
        Value::Array(a) if multiple && a.len() >= 2 => Ok(()),
        Value::Array(a) if !multiple && a.len() == 2 => Ok(()),
        _ => Err(format!(
            "Incorrect arguments to \"{name}\" should be: {example}"
        )),
    }
}

/// `repeat`: a map with `for_each` and `template` (and a boolean
/// `permutations` since 2017-09-01).
fn check_repeat(version: Version, name: &str, args: &Value) -> Result<(), String> {
    let Value::Object(m) = args else {
        return Err(format!("Arguments to \"{name}\" must be a map"));
    };
    if !(m.contains_key("for_each") && m.contains_key("template")) {
        return Err(key_error(
            "\"repeat\" syntax should be repeat:\n              template: This is %var%\n              for_each:\n                %var%: ['a', 'b', 'c']",
        ));
    }
    if version >= Version::V2017_09_01 {
        if let Some(p) = m.get("permutations") {
            if !p.is_boolean() {
                return Err(format!(
                    "\"permutations\" should be boolean type for {name} function."
                ));
            }
        }
    }
    Ok(())
}

/// `yaql`: a map of `expression` and optional `data`.
fn check_yaql(name: &str, args: &Value) -> Result<(), String> {
    let Value::Object(m) = args else {
        return Err(format!("Arguments to \"{name}\" must be a map."));
    };
    if !m.contains_key("expression") || m.keys().any(|k| k != "expression" && k != "data") {
        return Err(key_error(&format!(
            "\"{name}\" syntax should be {name}:\n              expression: $.data.var1.sum()\n              data:\n                var1: [3, 2, 1]"
        )));
    }
    Ok(())
}

/// `if`: three arguments (two or three since 2021-04-16).
fn check_if(version: Version, name: &str, args: &Value) -> Result<(), String> {
    let ok = match args {
        Value::Array(a) => {
            if version >= Version::V2021_04_16 {
                (2..=3).contains(&a.len())
            } else {
                a.len() == 3
            }
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Arguments to \"{name}\" must be of the form: [condition_name, value_if_true, value_if_false]"
        ))
    }
}

/// `Fn::MemberListToMap`: `[key name, value name, list]`.
fn check_member_list_to_map(name: &str, args: &Value) -> Result<(), String> {
    match args {
        Value::Array(a) if a.len() == 3 => {
            if !a[0].is_string() {
                return Err(format!("{name} Key Name must be a string"));
            }
            if !a[1].is_string() {
                return Err(format!("{name} Value Name must be a string"));
            }
            Ok(())
        }
        _ => Err(format!(
            "Wrong Arguments try: \"{{'{name}': ['Name', 'Value', ['.member.0.Name=key', '.member.0.Value=door']]}}\""
        )),
    }
}

/// `make_url`: a map of URL parts (or one call giving it).
fn check_make_url(name: &str, args: &Value) -> Result<(), String> {
    // Heat checks these in validate(); the shape is known now.
    let Value::Object(m) = args else {
        if is_single_call(args) {
            return Ok(());
        }
        return Err(format!("The arguments to \"{name}\" must be a map"));
    };
    const KEYS: &[&str] = &[
        "scheme", "username", "password", "host", "port", "path", "query", "fragment",
    ];
    let bad: Vec<&str> = m
        .keys()
        .filter(|k| !KEYS.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    if !bad.is_empty() {
        return Err(format!(
            "Invalid arguments to \"{name}\": {}",
            bad.join(", ")
        ));
    }
    Ok(())
}

/// Python's `str(KeyError(msg))`: the message as a quoted repr.
fn key_error(msg: &str) -> String {
    crate::pyfmt::py_repr(&Value::String(msg.to_string()))
}

/// True for a single-key mapping whose key is some function's name.
fn is_single_call(v: &Value) -> bool {
    match v {
        Value::Object(m) if m.len() == 1 => m
            .keys()
            .next()
            .is_some_and(|k| Func::from_name(k).is_some()),
        _ => false,
    }
}

/// Heat's error for a removed function, raised when validating.
pub fn removed_error(r: &Removed) -> Error {
    Error::new(
        ErrorKind::StackValidationFailed,
        format!(
            "{}: The template version is invalid: The function {} is not supported in this version of HOT.",
            r.path, r.name
        ),
        r.path.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_heat() {
        use Version as V;
        let cases = [
            (
                V::V2013_05_23,
                Context::Normal,
                "Fn::Join",
                Lookup::Func(Func::FnJoin),
            ),
            (V::V2014_10_16, Context::Normal, "Fn::Join", Lookup::Removed),
            (
                V::V2014_10_16,
                Context::Normal,
                "Fn::Select",
                Lookup::Func(Func::FnSelect),
            ),
            (
                V::V2015_10_15,
                Context::Normal,
                "Fn::Select",
                Lookup::Removed,
            ),
            (
                V::V2015_04_30,
                Context::Normal,
                "digest",
                Lookup::Func(Func::Digest),
            ),
            (
                V::V2014_10_16,
                Context::Normal,
                "digest",
                Lookup::NotAFunction,
            ),
            (
                V::V2016_10_14,
                Context::Normal,
                "if",
                Lookup::Func(Func::If),
            ),
            (
                V::V2016_10_14,
                Context::Normal,
                "equals",
                Lookup::NotAFunction,
            ),
            (
                V::V2016_10_14,
                Context::Condition,
                "equals",
                Lookup::Func(Func::Equals),
            ),
            (
                V::V2016_10_14,
                Context::Condition,
                "get_attr",
                Lookup::Invalid,
            ),
            (
                V::V2016_10_14,
                Context::Condition,
                "contains",
                Lookup::NotAFunction,
            ),
            (
                V::V2017_09_01,
                Context::Condition,
                "contains",
                Lookup::Func(Func::Contains),
            ),
            (V::V2017_09_01, Context::Condition, "Ref", Lookup::Removed),
            (
                V::V2017_02_24,
                Context::Normal,
                "make_url",
                Lookup::NotAFunction,
            ),
            (
                V::V2017_09_01,
                Context::Normal,
                "make_url",
                Lookup::Func(Func::MakeUrl),
            ),
        ];
        for (version, ctx, name, expected) in cases {
            assert_eq!(
                lookup(version, ctx, name),
                expected,
                "{name} in {version:?} ({ctx:?})"
            );
        }
    }

    #[test]
    fn typos_are_strict_findings() {
        let mut errors = Vec::new();
        let mut strict = Vec::new();
        let mut p = ExprParser {
            version: Version::V2015_04_30,
            errors: &mut errors,
            strict: &mut strict,
        };
        let v = serde_json::json!({"a": {"get_parm": "x"}, "b": {"map_merge": []}});
        let e = p.parse(&v, &Path::root(), Context::Normal);
        assert!(e.is_lit());
        assert_eq!(strict.len(), 2, "{strict:?}");
        assert!(strict[0].message.contains("did you mean \"get_param\""));
        assert!(strict[1].message.contains("added in 2016-04-08"));
    }

    #[test]
    fn bad_shapes_are_errors_with_paths() {
        let mut errors = Vec::new();
        let mut strict = Vec::new();
        let mut p = ExprParser {
            version: Version::V2016_10_14,
            errors: &mut errors,
            strict: &mut strict,
        };
        let v = serde_json::json!({"name": {"str_replace": {"template": "x"}}});
        p.parse(
            &v,
            &Path::keys(["resources", "r", "properties"]),
            Context::Normal,
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0]
            .message
            .starts_with("resources.r.properties.name.str_replace: '\"str_replace\" syntax"));
    }
}
