//! Offline checks of `terraform/` against what the code needs.
//!
//! The code writes what it needs from a deployment into `terraform/modules/ripple/contract.json`
//! (`ripple_common::deploy::contract`: per function the environment variables, IAM actions and
//! metric names, and the stream filter's item kinds); one test keeps that file equal to the code
//! (`RIPPLE_WRITE_CONTRACT=1` rewrites it). The module reads the filter kinds from it; the other
//! tests parse the `.tf` files with hcl-rs and compare them with the code's lists: each
//! function's environment, its IAM actions (written out in `iam.tf` so that checkov can read the
//! policies) and the resources they are granted on, and that the dashboard and alarms watch
//! metrics the code emits; and check zip paths, the table's stream and keys, the stream → fanout
//! mapping and the WebSocket routes. Terraform's provider registry cannot be
//! reached here, so `terraform validate` (names and references) is not run; `terraform fmt` and
//! checkov are (`scripts/validate-terraform.sh`).
//!
//! Decisions the checks encode (docs/deploy.md explains them):
//! - Environment: each function gets exactly `env_required ∪ env_optional`. Fanout's
//!   `RIPPLE_CONNECTIONS_ENDPOINT` is the stage's execute-api endpoint (never a request's domain,
//!   which is wrong behind a custom domain). `RUST_LOG` is always set (variable `log_level`); the
//!   auth variables are set only when their feature is on (conditional maps count as set).
//! - Secrets: no function gets `RIPPLE_JWT_SECRET`, and no `aws_ssm_parameter` data source or
//!   resource exists (its value would be kept in Terraform state); connect reads the parameter
//!   itself at cold start.
//! - Architecture: what `scripts/package.sh` built, read from its build record
//!   (`target/lambda/build.json`); a requested architecture other than the record's fails the plan
//!   (a precondition on each function). The checks evaluate those expressions with `hcl::eval`.
//! - IAM: a function's policy must grant at least the actions its code calls (a superset is
//!   allowed), never `*`, `dynamodb:*` or `dynamodb:Scan`, table actions only on the table and its
//!   indexes, stream actions only on its stream, `@connections` only on this API; a function that
//!   reads the secret parameter is granted `ssm:GetParameter` on that parameter only and
//!   `kms:Decrypt` (never on `*`), and no other function may read parameters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use hcl::eval::{Context as EvalContext, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::expr::{Expression, ObjectKey, TemplateExpr, Traversal, TraversalOperator};
use hcl::{Block, Body};
use ripple_common::deploy::{ENV_CONNECTIONS_ENDPOINT, FUNCTIONS, FunctionSpec};
use serde_json::Value as Json;

// ------------------------------------------------------------------------------------------------
// Loading: one `Module` per directory of `.tf` files.
// ------------------------------------------------------------------------------------------------

/// The repository's `terraform/` directory.
fn terraform_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../terraform")
}

/// One parsed `.tf` file; `path` is relative to `terraform/`.
struct TfFile {
    path: String,
    body: Body,
}

/// The `.tf` files of one directory; `dir` is relative to `terraform/` ("" = the root config).
struct Module {
    dir: String,
    files: Vec<TfFile>,
    /// Its `contract.json`, when it has one.
    contract: Option<Json>,
}

/// Every module under `terraform/`, by directory.
struct Config {
    modules: BTreeMap<String, Module>,
}

/// Reads every `.tf` file under `dir` as `(path relative to dir, text)`, sorted by path.
fn read_sources(dir: &Path) -> Result<Vec<(String, String)>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_dir() && !name.starts_with('.') {
                walk(base, &path, out)?;
            } else if name.ends_with(".tf") {
                let rel = path
                    .strip_prefix(base)?
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                out.push((rel, text));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// `terraform/<dir>/contract.json`, if there is one that parses.
fn read_contract(dir: &str) -> Option<Json> {
    let text = std::fs::read_to_string(terraform_dir().join(dir).join(CONTRACT_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

const CONTRACT_FILE: &str = "contract.json";

impl Config {
    fn load() -> Result<Config> {
        Config::parse(&read_sources(&terraform_dir())?)
    }

    fn parse(sources: &[(String, String)]) -> Result<Config> {
        let mut modules = BTreeMap::<String, Module>::new();
        for (path, text) in sources {
            let body =
                hcl::parse(text).with_context(|| format!("terraform/{path} does not parse"))?;
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
            modules
                .entry(dir.clone())
                .or_insert_with(|| Module {
                    contract: read_contract(&dir),
                    dir,
                    files: Vec::new(),
                })
                .files
                .push(TfFile {
                    path: path.clone(),
                    body,
                });
        }
        if modules.is_empty() {
            bail!("no .tf files under terraform/");
        }
        Ok(Config { modules })
    }

    fn root(&self) -> Result<&Module> {
        self.modules
            .get("")
            .ok_or_else(|| anyhow!("terraform/ has no root .tf files"))
    }

    /// The module that `caller`'s `module "<name>"` block points at with a local `source`.
    fn called(&self, caller: &Module, name: &str) -> Result<&Module> {
        let (file, block) = caller
            .find("module", &[name])
            .ok_or_else(|| anyhow!("terraform/{}: no module \"{name}\"", caller.dir))?;
        let source = attr(&block.body, "source")
            .map(render)
            .ok_or_else(|| anyhow!("terraform/{file}: module \"{name}\" has no source"))?;
        let dir = normalize(&Path::new(&caller.dir).join(&source));
        let dir = dir.to_string_lossy().replace('\\', "/");
        self.modules.get(&dir).ok_or_else(|| {
            anyhow!("terraform/{file}: module \"{name}\" source {source} has no .tf files")
        })
    }

    /// The Ripple module, as the root configuration calls it.
    fn ripple(&self) -> Result<&Module> {
        self.called(self.root()?, "ripple")
    }
}

impl Module {
    /// Every top-level block with the file it is in.
    fn blocks(&self) -> impl Iterator<Item = (&str, &Block)> {
        self.files
            .iter()
            .flat_map(|f| f.body.blocks().map(move |b| (f.path.as_str(), b)))
    }

    /// The top-level block `kind "label0" "label1" …`.
    fn find(&self, kind: &str, labels: &[&str]) -> Option<(&str, &Block)> {
        self.blocks()
            .find(|(_, b)| b.identifier() == kind && label_strs(b) == labels)
    }

    /// Every `resource "<rtype>" "…"` block.
    fn resources(&self, rtype: &str) -> Vec<(&str, &Block)> {
        self.blocks()
            .filter(|(_, b)| b.identifier() == "resource" && label_strs(b).first() == Some(&rtype))
            .collect()
    }

    /// The only `resource "<rtype>"` block, with its name.
    fn single_resource(&self, rtype: &str) -> Result<(&str, &str, &Block)> {
        match self.resources(rtype).as_slice() {
            [(file, block)] => Ok((file, label(block, 1), block)),
            found => bail!(
                "terraform/{}: expected one {rtype}, found {}",
                self.dir,
                found.len()
            ),
        }
    }

    fn variable_default(&self, name: &str) -> Option<&Expression> {
        self.find("variable", &[name])
            .and_then(|(_, b)| attr(&b.body, "default"))
    }

    fn local(&self, name: &str) -> Option<&Expression> {
        self.blocks()
            .filter(|(_, b)| b.identifier() == "locals")
            .find_map(|(_, b)| attr(&b.body, name))
    }

    /// Follows `var.x` to its default and `local.x` to its value, through parentheses.
    fn resolve<'a>(&'a self, mut expr: &'a Expression) -> &'a Expression {
        for _ in 0..16 {
            let next = match expr {
                Expression::Parenthesis(inner) => Some(inner.as_ref()),
                Expression::Traversal(t) => match (root_name(t), attr_path(t).as_slice()) {
                    (Some("var"), [name]) => self.variable_default(name),
                    (Some("local"), [name]) => self.local(name),
                    _ => None,
                },
                _ => None,
            };
            match next {
                Some(e) => expr = e,
                None => break,
            }
        }
        expr
    }

    /// The value of `local.contract.a.b…` in the module's `contract.json`, when `local.contract`
    /// is `jsondecode(file("${path.module}/contract.json"))`.
    fn in_contract(&self, expr: &Expression) -> Option<&Json> {
        let Expression::Traversal(t) = expr else {
            return None;
        };
        let attrs = attr_path(t);
        let (Some("local"), ["contract", path @ ..]) = (root_name(t), attrs.as_slice()) else {
            return None;
        };
        let read = render(self.local("contract")?);
        if !read.starts_with("${jsondecode(file(") || !read.contains(CONTRACT_FILE) {
            return None;
        }
        path.iter()
            .try_fold(self.contract.as_ref()?, |json, key| json.get(key))
    }

    /// The string an attribute resolves to (through variables and locals), if it is a literal.
    fn literal(&self, body: &Body, key: &str) -> Option<String> {
        match self.resolve(attr(body, key)?) {
            Expression::String(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The strings of a list attribute, resolving variables and locals; other items are rendered.
    fn strings(&self, expr: &Expression) -> Vec<String> {
        if let Some(Json::Array(items)) = self.in_contract(self.resolve(expr)) {
            return items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect();
        }
        match self.resolve(expr) {
            Expression::Array(items) => items.iter().map(|e| render(self.resolve(e))).collect(),
            Expression::FuncCall(f) if f.name.to_string() == "toset" && f.args.len() == 1 => {
                self.strings(&f.args[0])
            }
            other => vec![render(other)],
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Small HCL helpers.
// ------------------------------------------------------------------------------------------------

fn label_strs(block: &Block) -> Vec<&str> {
    block.labels().iter().map(|l| l.as_str()).collect()
}

fn label(block: &Block, i: usize) -> &str {
    block.labels().get(i).map_or("", |l| l.as_str())
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

fn sub_blocks<'a>(body: &'a Body, ident: &'a str) -> impl Iterator<Item = &'a Block> {
    body.blocks().filter(move |b| b.identifier() == ident)
}

fn sub_block<'a>(body: &'a Body, ident: &'a str) -> Option<&'a Block> {
    sub_blocks(body, ident).next()
}

/// An expression as it would read inside a Terraform string: `"a"` → `a`, `"${x.y}/z"` →
/// `${x.y}/z`, `x.y` → `${x.y}`.
fn render(expr: &Expression) -> String {
    match expr {
        Expression::String(s) => s.clone(),
        Expression::TemplateExpr(t) => match t.as_ref() {
            TemplateExpr::QuotedString(s) => s.clone(),
            TemplateExpr::Heredoc(h) => h.template.clone(),
        },
        other => format!("${{{other}}}"),
    }
}

fn key_name(key: &ObjectKey) -> String {
    match key {
        ObjectKey::Identifier(i) => i.to_string(),
        ObjectKey::Expression(e) => render(e),
        other => format!("{other:?}"),
    }
}

fn root_name(t: &Traversal) -> Option<&str> {
    match &t.expr {
        Expression::Variable(v) => Some(v.as_str()),
        _ => None,
    }
}

/// The attribute names after a traversal's root, up to the first index or splat.
fn attr_path(t: &Traversal) -> Vec<&str> {
    t.operators
        .iter()
        .map_while(|op| match op {
            TraversalOperator::GetAttr(name) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

/// Whether `expr` (or anything in it) refers to `resource_type.name…`.
fn mentions(expr: &Expression, prefix: &str) -> bool {
    render(expr).contains(prefix)
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if !matches!(
                    out.components().next_back(),
                    None | Some(Component::ParentDir)
                ) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Lambda functions: zip paths, runtime, environment.
// ------------------------------------------------------------------------------------------------

/// `resource "aws_lambda_function" "<package>"` of the Ripple module.
fn function<'a>(module: &'a Module, spec: &FunctionSpec) -> Result<(&'a str, &'a Block)> {
    module
        .find("resource", &["aws_lambda_function", spec.package])
        .ok_or_else(|| {
            anyhow!(
                "terraform/{}: no resource aws_lambda_function.{} for package {}",
                module.dir,
                spec.package,
                spec.package
            )
        })
}

/// Where a function's `filename` points, with the module's `${var.x}` prefix replaced by what
/// the root configuration passes and `${path.module}` by `terraform/`.
fn zip_path(cfg: &Config, filename: &str) -> Result<PathBuf> {
    let root = cfg.root()?;
    let mut path = filename.to_owned();
    if let Some(rest) = path.strip_prefix("${var.") {
        let (var, tail) = rest
            .split_once('}')
            .ok_or_else(|| anyhow!("unreadable filename {filename}"))?;
        let (_, call) = root
            .find("module", &["ripple"])
            .ok_or_else(|| anyhow!("no module \"ripple\" in terraform/"))?;
        let value = attr(&call.body, var)
            .or_else(|| cfg.ripple().ok().and_then(|m| m.variable_default(var)))
            .ok_or_else(|| {
                anyhow!("`var.{var}` (in {filename}) gets no value from terraform/main.tf")
            })?;
        path = format!("{}{tail}", render(value));
    }
    let dir = terraform_dir().to_string_lossy().into_owned();
    let path = path
        .replace("${path.module}", &dir)
        .replace("${path.root}", &dir);
    Ok(normalize(Path::new(&path)))
}

fn check_packages(cfg: &Config, problems: &mut Vec<String>) -> Result<()> {
    let module = cfg.ripple()?;
    let target = normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/lambda"));
    for spec in FUNCTIONS {
        let (file, f) = function(module, &spec)?;
        let at = format!("terraform/{file}: aws_lambda_function.{}", spec.package);
        let Some(filename) = attr(&f.body, "filename").map(render) else {
            problems.push(format!("{at} has no filename"));
            continue;
        };
        let expected = target.join(spec.package).join("bootstrap.zip");
        let actual = zip_path(cfg, &filename)?;
        if actual != expected {
            problems.push(format!(
                "{at}: filename {filename} is {}, but cargo lambda writes {}",
                actual.display(),
                expected.display()
            ));
        }
        let hash = attr(&f.body, "source_code_hash")
            .map(render)
            .unwrap_or_default();
        if !hash.contains(&filename) {
            problems.push(format!(
                "{at}: source_code_hash `{hash}` is not the hash of {filename}"
            ));
        }
        for (key, want) in [("runtime", "provided.al2023"), ("handler", "bootstrap")] {
            let got = module.literal(&f.body, key);
            if got.as_deref() != Some(want) {
                problems.push(format!("{at}: {key} is {got:?}, expected {want}"));
            }
        }
        for (arch, requested, plan_passes) in [
            ("x86_64", None, true),
            ("arm64", None, true),
            ("x86_64", Some("x86_64"), true),
            ("x86_64", Some("arm64"), false),
            ("arm64", Some("x86_64"), false),
        ] {
            match deployed_architecture(module, f, arch, requested) {
                Ok((deployed, passes)) => {
                    if passes != plan_passes {
                        problems.push(format!(
                            "{at}: with zips built for {arch} and architecture = {requested:?}, the preconditions {} (a mismatch must fail the plan)",
                            if passes { "pass" } else { "fail" }
                        ));
                    }
                    if passes && deployed != [arch] {
                        problems.push(format!(
                            "{at}: architectures is {deployed:?} with zips built for {arch} (build.json), not from the build record"
                        ));
                    }
                }
                Err(e) => problems.push(format!("{at}: {e:#}")),
            }
        }
    }
    check_build_record_source(cfg, problems)
}

/// A build record as `scripts/package.sh` writes it (`target/lambda/build.json`).
fn build_record(arch: &str) -> Json {
    let functions: serde_json::Map<String, Json> = FUNCTIONS
        .iter()
        .map(|f| {
            (
                f.package.to_owned(),
                serde_json::json!({"zip": format!("{}/bootstrap.zip", f.package), "base64sha256": "x"}),
            )
        })
        .collect();
    serde_json::json!({"architecture": arch, "profile": "release", "functions": functions})
}

/// Terraform's `coalesce`: the first argument that is not null.
fn tf_coalesce(args: FuncArgs) -> std::result::Result<hcl::Value, String> {
    args.iter()
        .find(|v| !v.is_null())
        .cloned()
        .ok_or_else(|| "coalesce: every argument is null".to_owned())
}

/// Evaluates a function's `architectures` and its preconditions that do not read files, with
/// the module's `var.build_record` built for `built` and `var.architecture` = `requested`:
/// the architectures deployed, and whether every such precondition holds.
fn deployed_architecture(
    module: &Module,
    function: &Block,
    built: &str,
    requested: Option<&str>,
) -> Result<(Vec<String>, bool)> {
    let mut ctx = EvalContext::new();
    ctx.declare_func(
        "coalesce",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(tf_coalesce),
    );
    let var = serde_json::json!({"architecture": requested, "build_record": build_record(built)});
    ctx.declare_var("var", hcl::to_value(&var)?);
    let local = module
        .local("architecture")
        .ok_or_else(|| anyhow!("no local.architecture"))?
        .evaluate(&ctx)
        .map_err(|e| anyhow!("local.architecture does not evaluate: {e}"))?;
    ctx.declare_var(
        "local",
        hcl::to_value(serde_json::json!({ "architecture": hcl::from_value::<Json>(local)? }))?,
    );
    let deployed = attr(&function.body, "architectures")
        .ok_or_else(|| anyhow!("no architectures"))?
        .evaluate(&ctx)
        .map_err(|e| anyhow!("architectures does not evaluate: {e}"))?;
    let deployed: Vec<String> = hcl::from_value(deployed)?;
    let mut arch_checks = 0;
    let mut passes = true;
    for lifecycle in sub_blocks(&function.body, "lifecycle") {
        for pre in sub_blocks(&lifecycle.body, "precondition") {
            let Some(cond) = attr(&pre.body, "condition") else {
                continue;
            };
            if !mentions(cond, "var.build_record") || render(cond).contains("file") {
                continue;
            }
            arch_checks += 1;
            let holds = cond
                .evaluate(&ctx)
                .map_err(|e| anyhow!("precondition `{cond}` does not evaluate: {e}"))?;
            passes &= holds == hcl::Value::Bool(true);
        }
    }
    if arch_checks == 0 {
        bail!("no precondition compares var.architecture with var.build_record.architecture");
    }
    Ok((deployed, passes))
}

/// The module's `build_record` is the file `scripts/package.sh` writes: `target/lambda/build.json`.
fn check_build_record_source(cfg: &Config, problems: &mut Vec<String>) -> Result<()> {
    let root = cfg.root()?;
    let (file, call) = root
        .find("module", &["ripple"])
        .ok_or_else(|| anyhow!("no module \"ripple\" in terraform/"))?;
    let Some(expr) = attr(&call.body, "build_record") else {
        problems.push(format!(
            "terraform/{file}: module \"ripple\" gets no build_record (target/lambda/build.json)"
        ));
        return Ok(());
    };
    fn identity(args: FuncArgs) -> std::result::Result<hcl::Value, String> {
        Ok(args.first().cloned().unwrap_or(hcl::Value::Null))
    }
    // `file` and `jsondecode` as identities: the expression evaluates to the path it reads.
    let mut ctx = EvalContext::new();
    for name in ["file", "jsondecode"] {
        ctx.declare_func(
            name,
            FuncDef::builder().param(ParamType::Any).build(identity),
        );
    }
    let dir = terraform_dir().to_string_lossy().into_owned();
    ctx.declare_var(
        "path",
        hcl::to_value(serde_json::json!({"module": dir, "root": dir}))?,
    );
    let mut locals = serde_json::Map::new();
    for _ in 0..4 {
        ctx.declare_var("local", hcl::to_value(&locals)?);
        for (_, b) in root.blocks().filter(|(_, b)| b.identifier() == "locals") {
            for a in b.body.attributes() {
                if let Ok(v) = a.expr().evaluate(&ctx) {
                    locals.insert(a.key().to_owned(), hcl::from_value(v)?);
                }
            }
        }
    }
    ctx.declare_var("local", hcl::to_value(&locals)?);
    let read = expr
        .evaluate(&ctx)
        .map_err(|e| anyhow!("terraform/{file}: build_record = `{expr}` does not evaluate: {e}"))?;
    let expected =
        normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/lambda/build.json"));
    let read_path = match &read {
        hcl::Value::String(p) => normalize(Path::new(p)),
        other => {
            bail!("terraform/{file}: build_record = `{expr}` is {other:?}, not jsondecode(file(…))")
        }
    };
    if read_path != expected || !render(expr).contains("jsondecode") {
        problems.push(format!(
            "terraform/{file}: build_record = `{expr}` reads {}, but scripts/package.sh writes {}",
            read_path.display(),
            expected.display()
        ));
    }
    Ok(())
}

/// The names of a function's environment variables, each with its value as source text.
fn env_vars(module: &Module, function: &Block) -> Result<BTreeMap<String, String>> {
    fn collect(
        module: &Module,
        expr: &Expression,
        out: &mut BTreeMap<String, String>,
    ) -> Result<()> {
        match module.resolve(expr) {
            Expression::Object(object) => {
                for (key, value) in object {
                    let name = key_name(key);
                    out.insert(name, render(value));
                }
            }
            Expression::FuncCall(f) if f.name.to_string() == "merge" => {
                f.args.iter().try_for_each(|a| collect(module, a, out))?;
            }
            Expression::Conditional(c) => {
                collect(module, &c.true_expr, out)?;
                collect(module, &c.false_expr, out)?;
            }
            other => bail!("cannot list the environment variables in `{other}`"),
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    if let Some(vars) =
        sub_block(&function.body, "environment").and_then(|e| attr(&e.body, "variables"))
    {
        collect(module, vars, &mut out)?;
    }
    Ok(out)
}

/// The environment variables a function must get on AWS (see the module docs above).
fn expected_env(spec: &FunctionSpec) -> BTreeSet<String> {
    spec.env_required
        .iter()
        .chain(spec.env_optional)
        .map(|name| (*name).to_owned())
        .collect()
}

fn check_environment(cfg: &Config, problems: &mut Vec<String>) -> Result<()> {
    let module = cfg.ripple()?;
    let (_, table, _) = module.single_resource("aws_dynamodb_table")?;
    for spec in FUNCTIONS {
        let (file, f) = function(module, &spec)?;
        let at = format!("terraform/{file}: aws_lambda_function.{}", spec.package);
        let env = env_vars(module, f).with_context(|| at.clone())?;
        let actual: BTreeSet<String> = env.keys().cloned().collect();
        let expected = expected_env(&spec);
        let missing: Vec<_> = expected.difference(&actual).collect();
        let extra: Vec<_> = actual.difference(&expected).collect();
        if !missing.is_empty() || !extra.is_empty() {
            problems.push(format!(
                "{at}: environment differs from what the code reads: missing {missing:?}, not read by the code {extra:?}"
            ));
        }
        for required in spec.env_required {
            if env.get(*required).is_some_and(|v| v.trim().is_empty()) {
                problems.push(format!("{at}: {required} is empty"));
            }
        }
        let table_name = env.get("RIPPLE_TABLE").cloned().unwrap_or_default();
        if !table_name.contains(&format!("aws_dynamodb_table.{table}.")) {
            problems.push(format!(
                "{at}: RIPPLE_TABLE is `{table_name}`, not the table aws_dynamodb_table.{table}"
            ));
        }
        if spec.manages_connections {
            // The execute-api endpoint of the stage, never a request's (custom) domain.
            let value = env
                .get(ENV_CONNECTIONS_ENDPOINT)
                .cloned()
                .unwrap_or_default();
            let text = match value
                .strip_prefix("${local.")
                .and_then(|rest| rest.strip_suffix('}'))
            {
                Some(name) => module.local(name).map(render).unwrap_or_default(),
                None => value.clone(),
            };
            if !text.contains(".api_endpoint") || !text.contains("stage") {
                problems.push(format!(
                    "{at}: {ENV_CONNECTIONS_ENDPOINT} is `{value}` (`{text}`), not the stage's execute-api endpoint (api_endpoint + stage)"
                ));
            }
        }
        for (name, value) in &env {
            if name == "RIPPLE_JWT_SECRET" || value.contains("aws_ssm_parameter.") {
                problems.push(format!(
                    "{at}: {name} puts a secret into the environment; pass the parameter's name (RIPPLE_JWT_SECRET_PARAMETER)"
                ));
            }
        }
    }
    for (file, block) in module.blocks() {
        let labels = label_strs(block);
        if matches!(block.identifier(), "data" | "resource")
            && labels.first() == Some(&"aws_ssm_parameter")
        {
            problems.push(format!(
                "terraform/{file}: {} aws_ssm_parameter.{} keeps the parameter's value in Terraform state",
                block.identifier(),
                label(block, 1)
            ));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// IAM.
// ------------------------------------------------------------------------------------------------

/// One statement of an `aws_iam_policy_document`, resources as source text.
#[derive(Debug)]
struct Statement {
    at: String,
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// The statements of every inline policy on the role of `function`.
fn role_statements(module: &Module, function: &Block) -> Result<Vec<Statement>> {
    let role_ref = attr(&function.body, "role").ok_or_else(|| anyhow!("no role"))?;
    let Expression::Traversal(t) = role_ref else {
        bail!("role `{role_ref}` is not a reference to an aws_iam_role");
    };
    let role = match (root_name(t), attr_path(t).as_slice()) {
        (Some("aws_iam_role"), [name, ..]) => (*name).to_owned(),
        _ => bail!("role `{role_ref}` is not a reference to an aws_iam_role"),
    };
    if module.find("resource", &["aws_iam_role", &role]).is_none() {
        bail!("role `{role_ref}`: no resource aws_iam_role.{role}");
    }
    let on_role = |b: &Block| {
        attr(&b.body, "role").is_some_and(|r| mentions(r, &format!("aws_iam_role.{role}.")))
    };
    if let Some((file, _)) = module
        .resources("aws_iam_role_policy_attachment")
        .into_iter()
        .find(|(_, b)| on_role(b))
    {
        bail!(
            "terraform/{file}: a managed policy is attached to aws_iam_role.{role}; grant inline, least privilege"
        );
    }
    let mut statements = Vec::new();
    for (_, policy) in module
        .resources("aws_iam_role_policy")
        .into_iter()
        .filter(|(_, b)| on_role(b))
    {
        let doc_ref = attr(&policy.body, "policy").map(render).unwrap_or_default();
        let doc = doc_ref
            .strip_prefix("${data.aws_iam_policy_document.")
            .and_then(|rest| rest.strip_suffix(".json}"))
            .ok_or_else(|| {
                anyhow!("policy `{doc_ref}` is not an aws_iam_policy_document's json")
            })?;
        let (file, doc_block) = module
            .find("data", &["aws_iam_policy_document", doc])
            .ok_or_else(|| anyhow!("no data aws_iam_policy_document.{doc}"))?;
        let contents = sub_blocks(&doc_block.body, "statement")
            .map(|s| &s.body)
            .chain(
                sub_blocks(&doc_block.body, "dynamic")
                    .filter(|d| label(d, 0) == "statement")
                    .filter_map(|d| sub_block(&d.body, "content").map(|c| &c.body)),
            );
        for body in contents {
            if attr(body, "not_actions").is_some() || attr(body, "not_resources").is_some() {
                bail!(
                    "terraform/{file}: data.aws_iam_policy_document.{doc} uses not_actions/not_resources"
                );
            }
            let sid = module.literal(body, "sid").unwrap_or_default();
            statements.push(Statement {
                at: format!(
                    "terraform/{file}: data.aws_iam_policy_document.{doc} statement \"{sid}\""
                ),
                allow: module.literal(body, "effect").is_none_or(|e| e == "Allow"),
                actions: attr(body, "actions")
                    .map(|e| module.strings(e))
                    .unwrap_or_default(),
                resources: attr(body, "resources")
                    .map(|e| module.strings(e))
                    .unwrap_or_default(),
            });
        }
    }
    Ok(statements)
}

fn check_iam(cfg: &Config, problems: &mut Vec<String>) -> Result<()> {
    const MANAGE: &str = "execute-api:ManageConnections";
    let module = cfg.ripple()?;
    let (_, table, _) = module.single_resource("aws_dynamodb_table")?;
    let table_arn = format!("${{aws_dynamodb_table.{table}.arn}}");
    let table_resources = [table_arn.clone(), format!("{table_arn}/index/*")];
    let stream_resources = [
        format!("${{aws_dynamodb_table.{table}.stream_arn}}"),
        format!("{table_arn}/stream/*"),
    ];
    let all_stream_actions: BTreeSet<&str> = FUNCTIONS
        .iter()
        .flat_map(|s| s.stream_actions.iter().copied())
        .collect();

    for spec in FUNCTIONS {
        let (file, f) = function(module, &spec)?;
        let at = format!("terraform/{file}: aws_lambda_function.{}", spec.package);
        let statements = role_statements(module, f).with_context(|| at.clone())?;
        let granted = |action: &str| {
            statements
                .iter()
                .any(|s| s.allow && s.actions.iter().any(|a| a == action))
        };

        // Everything the code calls is granted …
        let needed = spec.table_actions.iter().chain(spec.stream_actions);
        for action in needed.filter(|a| !granted(a)) {
            problems.push(format!(
                "{at}: its role does not grant {action}, which the code calls"
            ));
        }
        if spec.manages_connections != granted(MANAGE) {
            problems.push(format!(
                "{at}: {MANAGE} is {} but the code {}",
                if granted(MANAGE) {
                    "granted"
                } else {
                    "not granted"
                },
                if spec.manages_connections {
                    "posts to @connections"
                } else {
                    "never calls @connections"
                }
            ));
        }
        if spec.stream_actions.is_empty() && all_stream_actions.iter().any(|a| granted(a)) {
            problems.push(format!(
                "{at}: its role may read the stream, which the code does not"
            ));
        }

        // The secret parameter: read and decrypted exactly when the code does.
        if spec.reads_secret_parameter {
            for action in ["ssm:GetParameter", "kms:Decrypt"] {
                if !granted(action) {
                    problems.push(format!(
                        "{at}: its role does not grant {action}, which the code calls to read the secret parameter"
                    ));
                }
            }
        } else if statements
            .iter()
            .any(|s| s.allow && s.actions.iter().any(|a| a.starts_with("ssm:")))
        {
            problems.push(format!(
                "{at}: its role may read SSM parameters, which the code does not"
            ));
        }

        // … and only on what it needs.
        for s in statements.iter().filter(|s| s.allow) {
            for a in s.actions.iter().filter(|a| a.starts_with("ssm:")) {
                if a != "ssm:GetParameter" {
                    problems.push(format!(
                        "{}: grants {a}; the code calls only ssm:GetParameter",
                        s.at
                    ));
                }
                let the_parameter = |r: &String| {
                    r.contains(":ssm:")
                        && r.contains(":parameter/")
                        && r.contains("var.jwt_secret_ssm_parameter_name")
                };
                if s.resources.is_empty() || !s.resources.iter().all(the_parameter) {
                    problems.push(format!(
                        "{}: {a} on {:?}, expected only the secret parameter (var.jwt_secret_ssm_parameter_name)",
                        s.at, s.resources
                    ));
                }
            }
            if s.actions.iter().any(|a| a == "kms:Decrypt")
                && (s.resources.is_empty()
                    || s.resources.iter().any(|r| r == "*" || r.ends_with("/*")))
            {
                problems.push(format!(
                    "{}: kms:Decrypt on {:?}, expected only the parameter's key",
                    s.at, s.resources
                ));
            }
            let wildcard = s
                .actions
                .iter()
                .find(|a| matches!(a.as_str(), "*" | "dynamodb:*" | "execute-api:*"));
            if let Some(a) =
                wildcard.or_else(|| s.actions.iter().find(|a| a.as_str() == "dynamodb:Scan"))
            {
                problems.push(format!("{}: grants {a}", s.at));
            }
            let dynamodb: Vec<_> = s
                .actions
                .iter()
                .filter(|a| a.starts_with("dynamodb:"))
                .collect();
            let on_stream = dynamodb
                .iter()
                .filter(|a| all_stream_actions.contains(a.as_str()))
                .count();
            let allowed: &[String] = match on_stream {
                0 => &table_resources,
                n if n == dynamodb.len() => &stream_resources,
                _ => {
                    problems.push(format!("{}: mixes table and stream actions", s.at));
                    continue;
                }
            };
            if !dynamodb.is_empty()
                && (s.resources.is_empty() || s.resources.iter().any(|r| !allowed.contains(r)))
            {
                problems.push(format!(
                    "{}: {dynamodb:?} on {:?}, expected only {allowed:?}",
                    s.at, s.resources
                ));
            }
            if s.actions.iter().any(|a| a == MANAGE) {
                let scoped = |r: &String| {
                    (r.starts_with("${aws_apigatewayv2_stage.")
                        || r.starts_with("${aws_apigatewayv2_api."))
                        && r.contains("/@connections/")
                };
                if s.resources.is_empty() || !s.resources.iter().all(scoped) {
                    problems.push(format!(
                        "{}: {MANAGE} on {:?}, expected only this API's …/@connections/*",
                        s.at, s.resources
                    ));
                }
                if !s
                    .resources
                    .iter()
                    .any(|r| r.contains("/POST/@connections/"))
                {
                    problems.push(format!(
                        "{}: {MANAGE} does not cover POST …/@connections/*",
                        s.at
                    ));
                }
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Table, stream mapping, API routes.
// ------------------------------------------------------------------------------------------------

fn expect_literal(
    module: &Module,
    body: &Body,
    key: &str,
    want: &str,
    at: &str,
    problems: &mut Vec<String>,
) {
    let got = match attr(body, key).map(|e| module.resolve(e)) {
        Some(Expression::Bool(b)) => Some(b.to_string()),
        Some(Expression::Number(n)) => Some(n.to_string()),
        Some(e) => Some(render(e)),
        None => None,
    };
    if got.as_deref() != Some(want) {
        problems.push(format!(
            "{at}: {key} is {}, expected {want}",
            got.as_deref().unwrap_or("unset")
        ));
    }
}

fn check_table(cfg: &Config, problems: &mut Vec<String>) -> Result<()> {
    let module = cfg.ripple()?;
    let (file, name, table) = module.single_resource("aws_dynamodb_table")?;
    let at = format!("terraform/{file}: aws_dynamodb_table.{name}");
    let p = &mut *problems;
    for (key, want) in [
        ("billing_mode", "PAY_PER_REQUEST"),
        ("hash_key", "pk"),
        ("range_key", "sk"),
        ("stream_enabled", "true"),
        ("stream_view_type", "NEW_AND_OLD_IMAGES"),
    ] {
        expect_literal(module, &table.body, key, want, &at, p);
    }
    let attributes: BTreeMap<String, String> = sub_blocks(&table.body, "attribute")
        .map(|a| {
            (
                module.literal(&a.body, "name").unwrap_or_default(),
                module.literal(&a.body, "type").unwrap_or_default(),
            )
        })
        .collect();
    for key in ["pk", "sk", "gsi1pk", "gsi1sk"] {
        if attributes.get(key).map(String::as_str) != Some("S") {
            p.push(format!("{at}: attribute {key} (S) is not declared"));
        }
    }
    match sub_blocks(&table.body, "global_secondary_index")
        .find(|g| module.literal(&g.body, "name").as_deref() == Some("members_by_channel"))
    {
        Some(gsi) => {
            let gsi_at = format!("{at} index members_by_channel");
            for (key, want) in [
                ("hash_key", "gsi1pk"),
                ("range_key", "gsi1sk"),
                ("projection_type", "ALL"),
            ] {
                expect_literal(module, &gsi.body, key, want, &gsi_at, p);
            }
        }
        None => p.push(format!(
            "{at}: no global_secondary_index members_by_channel"
        )),
    }
    for (block, key, want) in [
        ("ttl", "attribute_name", "expires_at"),
        ("ttl", "enabled", "true"),
        ("server_side_encryption", "enabled", "true"),
        ("point_in_time_recovery", "enabled", "true"),
    ] {
        match sub_block(&table.body, block) {
            Some(b) => expect_literal(module, &b.body, key, want, &format!("{at} {block}"), p),
            None => p.push(format!("{at}: no {block} block")),
        }
    }
    Ok(())
}

/// Converts a literal expression (through variables, locals and `jsonencode`) to JSON.
fn to_json(module: &Module, expr: &Expression) -> Result<Json> {
    if let Some(json) = module.in_contract(module.resolve(expr)) {
        return Ok(json.clone());
    }
    Ok(match module.resolve(expr) {
        Expression::Null => Json::Null,
        Expression::Bool(b) => Json::Bool(*b),
        Expression::Number(n) => serde_json::to_value(n)?,
        Expression::String(s) => Json::String(s.clone()),
        Expression::Array(items) => Json::Array(
            items
                .iter()
                .map(|e| to_json(module, e))
                .collect::<Result<_>>()?,
        ),
        Expression::Object(object) => {
            let mut map = serde_json::Map::new();
            for (key, value) in object {
                let key = key_name(key);
                map.insert(key, to_json(module, value)?);
            }
            Json::Object(map)
        }
        Expression::FuncCall(f) if f.name.to_string() == "jsonencode" && f.args.len() == 1 => {
            to_json(module, &f.args[0])?
        }
        other => bail!("`{other}` is not a literal"),
    })
}

/// Which item kinds invoke fanout, by (eventName, image) over all filter patterns.
fn filtered_kinds(patterns: &[Json]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let strings = |v: Option<&Json>| -> Vec<String> {
        v.and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let mut out = BTreeMap::<(String, String), BTreeSet<String>>::new();
    for pattern in patterns {
        for event in strings(pattern.get("eventName")) {
            for image in ["NewImage", "OldImage"] {
                let kinds = strings(pattern.pointer(&format!("/dynamodb/{image}/kind/S")));
                if !kinds.is_empty() {
                    out.entry((event.clone(), image.to_owned()))
                        .or_default()
                        .extend(kinds);
                }
            }
        }
    }
    out
}

fn check_stream_mapping(cfg: &Config, problems: &mut Vec<String>) -> Result<()> {
    let module = cfg.ripple()?;
    let (_, table, _) = module.single_resource("aws_dynamodb_table")?;
    let (file, name, esm) = module.single_resource("aws_lambda_event_source_mapping")?;
    let at = format!("terraform/{file}: aws_lambda_event_source_mapping.{name}");
    let p = &mut *problems;
    let refers =
        |key: &str, prefix: &str| attr(&esm.body, key).is_some_and(|e| mentions(e, prefix));
    if !refers(
        "event_source_arn",
        &format!("aws_dynamodb_table.{table}.stream_arn"),
    ) {
        p.push(format!(
            "{at}: event_source_arn is not aws_dynamodb_table.{table}.stream_arn"
        ));
    }
    if !refers("function_name", "aws_lambda_function.fanout.") {
        p.push(format!(
            "{at}: function_name is not aws_lambda_function.fanout"
        ));
    }
    expect_literal(module, &esm.body, "starting_position", "LATEST", &at, p);
    expect_literal(
        module,
        &esm.body,
        "bisect_batch_on_function_error",
        "true",
        &at,
        p,
    );
    let response_types = attr(&esm.body, "function_response_types")
        .map(|e| module.strings(e))
        .unwrap_or_default();
    if !response_types
        .iter()
        .any(|t| t == "ReportBatchItemFailures")
    {
        p.push(format!(
            "{at}: function_response_types {response_types:?} lacks ReportBatchItemFailures"
        ));
    }
    for key in [
        "batch_size",
        "maximum_batching_window_in_seconds",
        "parallelization_factor",
        "maximum_retry_attempts",
        "maximum_record_age_in_seconds",
    ] {
        if attr(&esm.body, key).is_none() {
            p.push(format!("{at}: {key} is not set"));
        }
    }
    let destination = sub_block(&esm.body, "destination_config")
        .and_then(|d| sub_block(&d.body, "on_failure"))
        .and_then(|o| attr(&o.body, "destination_arn"));
    if !destination.is_some_and(|d| mentions(d, "aws_sqs_queue.")) {
        p.push(format!(
            "{at}: no on_failure destination on an aws_sqs_queue"
        ));
    }
    let patterns = sub_block(&esm.body, "filter_criteria")
        .into_iter()
        .flat_map(|c| sub_blocks(&c.body, "filter"))
        .filter_map(|f| attr(&f.body, "pattern"))
        .map(|e| to_json(module, e))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("{at}: reading filter patterns"))?;
    let upserts: BTreeSet<String> = ripple_common::deploy::FANOUT_UPSERT_KINDS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    let expected = BTreeMap::from([
        (
            ("INSERT".to_owned(), "NewImage".to_owned()),
            upserts.clone(),
        ),
        (("MODIFY".to_owned(), "NewImage".to_owned()), upserts),
        (
            ("REMOVE".to_owned(), "OldImage".to_owned()),
            ripple_common::deploy::FANOUT_REMOVE_KINDS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
        ),
    ]);
    let actual = filtered_kinds(&patterns);
    if actual != expected {
        p.push(format!(
            "{at}: filter criteria let through {actual:?}, expected {expected:?}"
        ));
    }
    Ok(())
}

/// Every route key of the API with the function its integration invokes.
fn routes(module: &Module) -> Result<BTreeMap<String, (String, bool)>> {
    let mut out = BTreeMap::new();
    for (file, route) in module.resources("aws_apigatewayv2_route") {
        let at = format!(
            "terraform/{file}: aws_apigatewayv2_route.{}",
            label(route, 1)
        );
        let key_expr =
            attr(&route.body, "route_key").ok_or_else(|| anyhow!("{at}: no route_key"))?;
        let keys = match render(key_expr).as_str() {
            "${each.value}" | "${each.key}" => {
                let for_each = attr(&route.body, "for_each")
                    .ok_or_else(|| anyhow!("{at}: each without for_each"))?;
                module.strings(for_each)
            }
            _ => vec![render(module.resolve(key_expr))],
        };
        let target = attr(&route.body, "target").map(render).unwrap_or_default();
        let integration = target
            .strip_prefix("integrations/${aws_apigatewayv2_integration.")
            .and_then(|rest| rest.strip_suffix(".id}"))
            .ok_or_else(|| anyhow!("{at}: target `{target}` is not an integration"))?;
        let (_, integration) = module
            .find("resource", &["aws_apigatewayv2_integration", integration])
            .ok_or_else(|| anyhow!("{at}: no aws_apigatewayv2_integration.{integration}"))?;
        let uri = attr(&integration.body, "integration_uri")
            .map(render)
            .unwrap_or_default();
        let function = uri
            .strip_prefix("${aws_lambda_function.")
            .and_then(|rest| rest.strip_suffix(".invoke_arn}"))
            .ok_or_else(|| {
                anyhow!("{at}: integration_uri `{uri}` is not a function's invoke_arn")
            })?;
        let route_name = label(route, 1);
        let two_way = module
            .literal(&route.body, "route_response_selection_expression")
            .as_deref()
            == Some("$default")
            && module
                .resources("aws_apigatewayv2_route_response")
                .iter()
                .any(|(_, rr)| {
                    module.literal(&rr.body, "route_response_key").as_deref() == Some("$default")
                        && [attr(&rr.body, "for_each"), attr(&rr.body, "route_id")]
                            .into_iter()
                            .flatten()
                            .any(|e| mentions(e, &format!("aws_apigatewayv2_route.{route_name}")))
                });
        for key in keys {
            out.insert(key, (function.to_owned(), two_way));
        }
    }
    Ok(out)
}

fn check_api(cfg: &Config, problems: &mut Vec<String>) -> Result<()> {
    let module = cfg.ripple()?;
    let (file, name, api) = module.single_resource("aws_apigatewayv2_api")?;
    let at = format!("terraform/{file}: aws_apigatewayv2_api.{name}");
    expect_literal(
        module,
        &api.body,
        "protocol_type",
        "WEBSOCKET",
        &at,
        problems,
    );
    expect_literal(
        module,
        &api.body,
        "route_selection_expression",
        "$request.body.action",
        &at,
        problems,
    );

    let expected: BTreeMap<String, (String, bool)> = [
        ("$connect", "connect", false),
        ("$disconnect", "connect", false),
        ("join", "ingest", true),
        ("leave", "ingest", true),
        ("position", "ingest", true),
        ("message", "ingest", true),
        ("$default", "ingest", true),
    ]
    .into_iter()
    .map(|(k, f, two_way)| (k.to_owned(), (f.to_owned(), two_way)))
    .collect();
    let actual = routes(module)?;
    for key in expected
        .keys()
        .chain(actual.keys())
        .collect::<BTreeSet<_>>()
    {
        let (want, got) = (expected.get(key), actual.get(key));
        if want != got {
            problems.push(format!(
                "terraform/{}: route {key:?} is (function, $default route response) {got:?}, expected {want:?}",
                module.dir
            ));
        }
    }
    for function in ["connect", "ingest"] {
        let allowed = module
            .resources("aws_lambda_permission")
            .iter()
            .any(|(_, b)| {
                module.literal(&b.body, "principal").as_deref() == Some("apigateway.amazonaws.com")
                    && attr(&b.body, "function_name")
                        .is_some_and(|e| mentions(e, &format!("aws_lambda_function.{function}.")))
            });
        if !allowed {
            problems.push(format!(
                "terraform/{}: no aws_lambda_permission lets API Gateway invoke {function}",
                module.dir
            ));
        }
    }
    let (file, name, stage) = module.single_resource("aws_apigatewayv2_stage")?;
    let at = format!("terraform/{file}: aws_apigatewayv2_stage.{name}");
    let settings = sub_block(&stage.body, "default_route_settings");
    for key in ["throttling_rate_limit", "throttling_burst_limit"] {
        if settings.and_then(|s| attr(&s.body, key)).is_none() {
            problems.push(format!("{at}: default_route_settings.{key} is not set"));
        }
    }
    // Access logs are opt-in (they need the account-level role): a `dynamic` block over the
    // optional log group, whose content sends them there.
    let log_destination = sub_block(&stage.body, "access_log_settings")
        .and_then(|s| attr(&s.body, "destination_arn"))
        .or_else(|| {
            sub_blocks(&stage.body, "dynamic")
                .find(|d| label(d, 0) == "access_log_settings")
                .filter(|d| {
                    attr(&d.body, "for_each")
                        .is_some_and(|e| mentions(e, "aws_cloudwatch_log_group."))
                })
                .and_then(|d| sub_block(&d.body, "content"))
                .and_then(|c| attr(&c.body, "destination_arn"))
        });
    if !log_destination.is_some_and(|d| {
        mentions(d, "aws_cloudwatch_log_group.") || mentions(d, "access_log_settings.value")
    }) {
        problems.push(format!(
            "{at}: access logs do not go to a CloudWatch log group"
        ));
    }
    // The account-wide API Gateway role is never taken over by default.
    for (file, block) in module.resources("aws_api_gateway_account") {
        let opt_in = attr(&block.body, "count")
            .is_some_and(|c| mentions(c, "var.manage_api_gateway_account"));
        let default_off = module
            .variable_default("manage_api_gateway_account")
            .is_some_and(|d| matches!(d, Expression::Bool(false)));
        if !opt_in || !default_off {
            problems.push(format!(
                "terraform/{file}: aws_api_gateway_account must be opt-in (count on var.manage_api_gateway_account, default false): it replaces the region's logging role for the whole account"
            ));
        }
    }
    let root = cfg.root()?;
    for output in ["websocket_url", "connections_endpoint"] {
        if root.find("output", &[output]).is_none() {
            problems.push(format!("terraform/: no output \"{output}\""));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Observability: the dashboard and alarms watch metrics the code emits.
// ------------------------------------------------------------------------------------------------

/// The function package whose `aws_lambda_function.<package>.function_name` `expr` names.
fn function_named(module: &Module, expr: &Expression) -> Option<&'static str> {
    let text = render(module.resolve(expr));
    FUNCTIONS
        .iter()
        .map(|f| f.package)
        .find(|p| text.contains(&format!("aws_lambda_function.{p}.function_name")))
}

/// Every CloudWatch metric array (`[namespace, metric, dimension, value, …]`) inside `expr`,
/// following locals.
fn metric_arrays<'a>(module: &'a Module, expr: &'a Expression, out: &mut Vec<&'a [Expression]>) {
    let is_string = |e: &Expression| matches!(module.resolve(e), Expression::String(_));
    match module.resolve(expr) {
        Expression::Array(items)
            if items.len() >= 4 && is_string(&items[0]) && is_string(&items[1]) =>
        {
            out.push(items);
        }
        Expression::Array(items) => items.iter().for_each(|e| metric_arrays(module, e, out)),
        Expression::Object(object) => object.values().for_each(|e| metric_arrays(module, e, out)),
        Expression::FuncCall(f) => f.args.iter().for_each(|e| metric_arrays(module, e, out)),
        Expression::Parenthesis(inner) => metric_arrays(module, inner, out),
        _ => {}
    }
}

/// A metric a dashboard or alarm refers to: namespace, name, and dimension → value expression.
struct Watched<'a> {
    namespace: String,
    metric: String,
    dimensions: Vec<(String, &'a Expression)>,
}

impl Watched<'_> {
    fn dimension(&self, name: &str) -> Option<&Expression> {
        self.dimensions
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
    }
}

fn literal_of(module: &Module, expr: &Expression) -> Option<String> {
    match module.resolve(expr) {
        Expression::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The metrics a dashboard body shows.
fn dashboard_metrics<'a>(module: &'a Module, body: &'a Expression) -> Vec<Watched<'a>> {
    let mut arrays = Vec::new();
    metric_arrays(module, body, &mut arrays);
    arrays
        .into_iter()
        .map(|items| {
            let mut dimensions = Vec::new();
            let mut rest = items[2..].iter();
            while let (Some(k), Some(v)) = (rest.next(), rest.next()) {
                if let Some(k) = literal_of(module, k) {
                    dimensions.push((k, v));
                }
            }
            Watched {
                namespace: literal_of(module, &items[0]).unwrap_or_default(),
                metric: literal_of(module, &items[1]).unwrap_or_default(),
                dimensions,
            }
        })
        .collect()
}

/// The metrics an alarm watches (directly, or in its `metric_query` blocks).
fn alarm_metrics<'a>(module: &'a Module, body: &'a Body) -> Vec<Watched<'a>> {
    let one = |b: &'a Body| {
        let namespace = module.literal(b, "namespace")?;
        let metric = module.literal(b, "metric_name")?;
        let dimensions = match attr(b, "dimensions").map(|d| module.resolve(d)) {
            Some(Expression::Object(o)) => o.iter().map(|(k, v)| (key_name(k), v)).collect(),
            _ => Vec::new(),
        };
        Some(Watched {
            namespace,
            metric,
            dimensions,
        })
    };
    let mut out: Vec<Watched<'a>> = one(body).into_iter().collect();
    for query in sub_blocks(body, "metric_query") {
        out.extend(sub_blocks(&query.body, "metric").filter_map(|m| one(&m.body)));
    }
    out
}

/// A problem with a `Ripple` metric, or None when the code emits it for the function named.
fn ripple_metric_problem(module: &Module, w: &Watched) -> Option<String> {
    let function = w
        .dimension(ripple_common::emf::FUNCTION_DIMENSION)
        .and_then(|e| function_named(module, e));
    match function {
        None => Some(format!(
            "Ripple metric {} has no Function dimension naming aws_lambda_function.<package>.function_name",
            w.metric
        )),
        Some(f) if ripple_common::emf::lookup(f, &w.metric).is_none() => Some(format!(
            "Ripple metric {} of {f}, which the code does not emit (ripple_common::emf::CATALOG)",
            w.metric
        )),
        Some(_) => None,
    }
}

/// The dashboard shows every metric the code emits and the fanout's IteratorAge; the alarms
/// watch iterator age, failed records and throttled posts, notify the optional SNS topic, and
/// every `Ripple` metric either refers to is one its function emits.
fn check_observability(cfg: &Config, problems: &mut Vec<String>) -> Result<()> {
    let module = cfg.ripple()?;
    let (file, name, dashboard) = module.single_resource("aws_cloudwatch_dashboard")?;
    let at = format!("terraform/{file}: aws_cloudwatch_dashboard.{name}");
    let body = attr(&dashboard.body, "dashboard_body")
        .ok_or_else(|| anyhow!("{at} has no dashboard_body"))?;
    let shown = dashboard_metrics(module, body);
    for w in shown
        .iter()
        .filter(|w| w.namespace == ripple_common::emf::NAMESPACE)
    {
        if let Some(p) = ripple_metric_problem(module, w) {
            problems.push(format!("{at} shows {p}"));
        }
    }
    for spec in ripple_common::emf::CATALOG {
        let on_it = shown.iter().any(|w| {
            w.namespace == ripple_common::emf::NAMESPACE
                && w.metric == spec.name
                && w.dimension(ripple_common::emf::FUNCTION_DIMENSION)
                    .and_then(|e| function_named(module, e))
                    == Some(spec.function)
        });
        if !on_it {
            problems.push(format!(
                "{at} does not show {}'s metric {}",
                spec.function, spec.name
            ));
        }
    }
    let iterator_age = |w: &Watched| {
        w.namespace == "AWS/Lambda"
            && w.metric == "IteratorAge"
            && w.dimension("FunctionName")
                .and_then(|e| function_named(module, e))
                == Some("fanout")
    };
    if !shown.iter().any(iterator_age) {
        problems.push(format!("{at} does not show the fanout's IteratorAge"));
    }

    let alarms = module.resources("aws_cloudwatch_metric_alarm");
    let mut watched: Vec<(String, String)> = Vec::new();
    for (file, block) in &alarms {
        let at = format!(
            "terraform/{file}: aws_cloudwatch_metric_alarm.{}",
            label(block, 1)
        );
        for w in alarm_metrics(module, &block.body) {
            if w.namespace == ripple_common::emf::NAMESPACE {
                if let Some(p) = ripple_metric_problem(module, &w) {
                    problems.push(format!("{at} watches {p}"));
                }
            } else if w.metric == "IteratorAge" && !iterator_age(&w) {
                problems.push(format!(
                    "{at} watches an IteratorAge that is not the fanout's"
                ));
            }
            watched.push((w.namespace.clone(), w.metric.clone()));
        }
        for key in ["alarm_actions", "ok_actions"] {
            let notifies = attr(&block.body, key)
                .is_some_and(|e| mentions(module.resolve(e), "var.alarm_sns_topic_arn"));
            if !notifies {
                problems.push(format!("{at}: {key} does not use var.alarm_sns_topic_arn"));
            }
        }
    }
    for (namespace, metric) in [
        ("AWS/Lambda", "IteratorAge"),
        ("Ripple", "FailedRecords"),
        ("Ripple", "ThrottledPosts"),
    ] {
        if !watched.iter().any(|(n, m)| n == namespace && m == metric) {
            problems.push(format!(
                "terraform/{}: no alarm watches {namespace} {metric}",
                module.dir
            ));
        }
    }
    if !matches!(
        module.variable_default("alarm_sns_topic_arn"),
        Some(Expression::Null)
    ) {
        problems.push(format!(
            "terraform/{}: variable alarm_sns_topic_arn must default to null (no notifications)",
            module.dir
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Running checks.
// ------------------------------------------------------------------------------------------------

type Check = fn(&Config, &mut Vec<String>) -> Result<()>;

/// Every module's AWS provider constraint has a lower and an upper bound (`>= x, < next major`),
/// so `terraform init` never picks a major version nobody tested.
fn check_provider_bounds(cfg: &Config, problems: &mut Vec<String>) -> Result<()> {
    for module in cfg.modules.values() {
        for (file, block) in module
            .blocks()
            .filter(|(_, b)| b.identifier() == "terraform")
        {
            let Some(required) = sub_block(&block.body, "required_providers") else {
                continue;
            };
            let Some(aws) = attr(&required.body, "aws") else {
                continue;
            };
            let version = match aws {
                Expression::Object(o) => o
                    .iter()
                    .find(|(k, _)| key_name(k) == "version")
                    .map(|(_, v)| render(v)),
                _ => None,
            }
            .unwrap_or_default();
            if !(version.contains(">=") && version.contains('<') && !version.contains("<=")) {
                problems.push(format!(
                    "terraform/{file}: aws provider version `{version}` is not bounded (`>= x, < next major`)"
                ));
            }
        }
    }
    Ok(())
}

const ALL_CHECKS: [(&str, Check); 8] = [
    ("packages", check_packages),
    ("environment", check_environment),
    ("iam", check_iam),
    ("table", check_table),
    ("stream mapping", check_stream_mapping),
    ("api", check_api),
    ("observability", check_observability),
    ("provider bounds", check_provider_bounds),
];

/// The problems a check reports; a check that cannot run reports why as a problem.
fn problems_of(check: Check, cfg: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = check(cfg, &mut problems) {
        problems.push(format!("{e:#}"));
    }
    problems
}

fn assert_no_problems(what: &str, problems: &[String]) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "{} problem(s) with {what} in terraform/:\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )
}

fn check_repo(check: Check, what: &str) -> Result<()> {
    // GIVEN the Terraform configuration in terraform/
    let cfg = Config::load()?;
    // WHEN the check runs over it
    let problems = problems_of(check, &cfg);
    // THEN it finds nothing wrong
    assert_no_problems(what, &problems)
}

#[test]
fn the_contract_terraform_reads_is_the_one_the_code_writes() -> Result<()> {
    // GIVEN what the code needs from a deployment (common/src/deploy.rs, common/src/emf.rs)
    let written = format!(
        "{}\n",
        serde_json::to_string_pretty(&ripple_common::deploy::contract())?
    );
    let path = terraform_dir().join("modules/ripple").join(CONTRACT_FILE);
    if std::env::var_os("RIPPLE_WRITE_CONTRACT").is_some() {
        std::fs::write(&path, &written).with_context(|| format!("writing {}", path.display()))?;
    }
    // WHEN the contract.json the module reads is compared with it
    let checked_in =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    // THEN they are the same, byte for byte
    if checked_in != written {
        bail!(
            "{} is not what the code writes; rewrite it with RIPPLE_WRITE_CONTRACT=1 cargo nextest run -p ripple-tests --test terraform",
            path.display()
        );
    }
    Ok(())
}

#[test]
fn lambda_zips_are_where_cargo_lambda_writes_each_package() -> Result<()> {
    check_repo(check_packages, "Lambda packages")
}

#[test]
fn each_function_gets_exactly_the_environment_its_code_reads() -> Result<()> {
    check_repo(check_environment, "environment variables")
}

#[test]
fn each_role_grants_what_its_code_calls_and_nothing_broad() -> Result<()> {
    check_repo(check_iam, "IAM")
}

#[test]
fn table_has_the_keys_index_ttl_and_stream_fanout_expects() -> Result<()> {
    check_repo(check_table, "the DynamoDB table")
}

#[test]
fn stream_mapping_reports_partial_failures_and_filters_to_what_fanout_uses() -> Result<()> {
    check_repo(check_stream_mapping, "the fanout event source mapping")
}

#[test]
fn websocket_routes_reach_the_right_functions_and_answer_the_sender() -> Result<()> {
    check_repo(check_api, "the WebSocket API")
}

#[test]
fn the_aws_provider_is_bounded_to_the_major_version_written_for() -> Result<()> {
    check_repo(check_provider_bounds, "provider constraints")
}

#[test]
fn the_dashboard_and_alarms_watch_metrics_the_code_emits() -> Result<()> {
    check_repo(check_observability, "the dashboard and alarms")
}

#[test]
fn expected_environment_includes_the_configured_connections_endpoint() {
    // GIVEN the fanout's contract, which lists RIPPLE_CONNECTIONS_ENDPOINT as optional
    let fanout = FUNCTIONS.iter().find(|f| f.package == "fanout").copied();
    // WHEN the expected AWS environment is computed
    let expected = fanout.map(|f| expected_env(&f)).unwrap_or_default();
    // THEN the endpoint is in it (a custom domain is not the @connections host), with the table
    // and RUST_LOG
    assert!(expected.contains(ENV_CONNECTIONS_ENDPOINT), "{expected:?}");
    assert!(
        expected.contains("RIPPLE_TABLE") && expected.contains("RUST_LOG"),
        "{expected:?}"
    );
}

/// One deliberate breakage of `terraform/` and what the checks must then say.
struct Breakage {
    what: &'static str,
    file: &'static str,
    from: &'static str,
    to: &'static str,
    reported: &'static str,
}

const BREAKAGES: [Breakage; 17] = [
    Breakage {
        what: "an IAM action the code calls, removed",
        file: "modules/ripple/iam.tf",
        from: r#""dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"]"#,
        to: r#""dynamodb:BatchGetItem"]"#,
        reported: "aws_lambda_function.fanout: its role does not grant dynamodb:BatchWriteItem",
    },
    Breakage {
        what: "a Scan on every table",
        file: "modules/ripple/iam.tf",
        from: r#"actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"]
    resources = local.table_resources"#,
        to: r#"actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "dynamodb:Scan"]
    resources = ["*"]"#,
        reported: "grants dynamodb:Scan",
    },
    Breakage {
        what: "the SSM read of the secret parameter, removed",
        file: "modules/ripple/iam.tf",
        from: r#"actions   = ["ssm:GetParameter"]"#,
        to: r#"actions   = []"#,
        reported: "aws_lambda_function.connect: its role does not grant ssm:GetParameter",
    },
    Breakage {
        what: "the SSM read widened to every parameter",
        file: "modules/ripple/iam.tf",
        from: r#"resources = [local.jwt_secret_parameter_arn]
    }"#,
        to: r#"resources = ["*"]
    }"#,
        reported: "ssm:GetParameter on [\"*\"], expected only the secret parameter",
    },
    Breakage {
        what: "the secret read at plan time into the environment (and state)",
        file: "modules/ripple/main.tf",
        from: r#"var.enable_jwt_auth ? { RIPPLE_JWT_SECRET_PARAMETER = var.jwt_secret_ssm_parameter_name } : {},"#,
        to: r#"var.enable_jwt_auth ? { RIPPLE_JWT_SECRET = data.aws_ssm_parameter.jwt_secret[0].value } : {},"#,
        reported: "RIPPLE_JWT_SECRET puts a secret into the environment",
    },
    Breakage {
        what: "a filter kind written in the Terraform instead of read from the contract",
        file: "modules/ripple/main.tf",
        from: "fanout_remove_kinds = local.contract.fanout_remove_kinds",
        to: r#"fanout_remove_kinds = ["roster", "member"]"#,
        reported: "filter criteria let through",
    },
    Breakage {
        what: "the stream view type",
        file: "modules/ripple/dynamodb.tf",
        from: r#"stream_view_type = "NEW_AND_OLD_IMAGES""#,
        to: r#"stream_view_type = "NEW_IMAGE""#,
        reported: "stream_view_type is NEW_IMAGE, expected NEW_AND_OLD_IMAGES",
    },
    Breakage {
        what: "an environment variable the code reads, dropped",
        file: "modules/ripple/lambda.tf",
        from: "RIPPLE_MESSAGE_TTL_SECS        = tostring(var.message_ttl_seconds)",
        to: "",
        reported: "missing [\"RIPPLE_MESSAGE_TTL_SECS\"]",
    },
    Breakage {
        what: "a zip path that is not the package's",
        file: "modules/ripple/lambda.tf",
        from: r#"filename      = "${var.lambda_artifacts_dir}/fanout/bootstrap.zip""#,
        to: r#"filename      = "${var.lambda_artifacts_dir}/fan-out/bootstrap.zip""#,
        reported: "but cargo lambda writes",
    },
    Breakage {
        what: "an architecture hard-coded instead of the build record's",
        file: "modules/ripple/lambda.tf",
        from: "architectures = [local.architecture]\n  filename      = \"${var.lambda_artifacts_dir}/fanout/bootstrap.zip\"",
        to: "architectures = [\"arm64\"]\n  filename      = \"${var.lambda_artifacts_dir}/fanout/bootstrap.zip\"",
        reported: "architectures is [\"arm64\"] with zips built for x86_64 (build.json), not from the build record",
    },
    Breakage {
        what: "a requested architecture that wins over the build record without a check",
        file: "modules/ripple/lambda.tf",
        from: "condition     = var.architecture == null || var.architecture == var.build_record.architecture",
        to: "condition     = var.architecture == null || var.build_record.architecture != null",
        reported: "with zips built for x86_64 and architecture = Some(\"arm64\"), the preconditions pass",
    },
    Breakage {
        what: "a build record read from elsewhere than package.sh writes it",
        file: "main.tf",
        from: "build_record_file = \"${path.module}/../target/lambda/build.json\"",
        to: "build_record_file = \"${path.module}/../target/lambda/record.json\"",
        reported: "but scripts/package.sh writes",
    },
    Breakage {
        what: "the account-wide API Gateway role managed by default",
        file: "modules/ripple/variables.tf",
        from: "default     = false\n}\n\nvariable \"enable_access_logs\"",
        to: "default     = true\n}\n\nvariable \"enable_access_logs\"",
        reported: "aws_api_gateway_account must be opt-in",
    },
    Breakage {
        what: "an unbounded provider",
        file: "modules/ripple/versions.tf",
        from: "version = \">= 5.30, < 6.0\"",
        to: "version = \">= 5.30\"",
        reported: "is not bounded",
    },
    Breakage {
        what: "fanout posting to the request's domain",
        file: "modules/ripple/lambda.tf",
        from: "RIPPLE_CONNECTIONS_ENDPOINT = local.connections_endpoint",
        to: "RIPPLE_CONNECTIONS_ENDPOINT = var.domain_name",
        reported: "not the stage's execute-api endpoint",
    },
    Breakage {
        what: "an alarm on a metric the code does not emit",
        file: "modules/ripple/observability.tf",
        from: r#"metric_name         = "FailedRecords""#,
        to: r#"metric_name         = "FailedRecord""#,
        reported: "watches Ripple metric FailedRecord of fanout, which the code does not emit",
    },
    Breakage {
        what: "a dashboard metric under the wrong function",
        file: "modules/ripple/observability.tf",
        from: r#""GoneRemoved", "Function", local.fanout_function_name"#,
        to: r#""GoneRemoved", "Function", local.ingest_function_name"#,
        reported: "shows Ripple metric GoneRemoved of ingest, which the code does not emit",
    },
];

#[test]
fn each_deliberate_breakage_of_the_terraform_is_reported() -> Result<()> {
    let pristine = read_sources(&terraform_dir())?;
    for b in &BREAKAGES {
        // GIVEN an in-memory copy of terraform/ with one breakage
        let mut sources = pristine.clone();
        let (_, text) = sources
            .iter_mut()
            .find(|(path, _)| path == b.file)
            .ok_or_else(|| anyhow!("{}: no terraform/{}", b.what, b.file))?;
        if !text.contains(b.from) {
            bail!(
                "{}: terraform/{} no longer contains {:?}; update this test",
                b.what,
                b.file,
                b.from
            );
        }
        *text = text.replacen(b.from, b.to, 1);
        let cfg = Config::parse(&sources)?;
        // WHEN every check runs over it
        let problems: Vec<String> = ALL_CHECKS
            .iter()
            .flat_map(|(_, check)| problems_of(*check, &cfg))
            .collect();
        // THEN the breakage is reported, naming the problem
        if !problems.iter().any(|p| p.contains(b.reported)) {
            bail!(
                "{} was not reported (expected {:?}); the checks said:\n  - {}",
                b.what,
                b.reported,
                problems.join("\n  - ")
            );
        }
    }
    Ok(())
}

#[test]
fn the_unbroken_terraform_passes_every_check() -> Result<()> {
    // GIVEN the same in-memory route the breakage test takes, with nothing changed
    let cfg = Config::parse(&read_sources(&terraform_dir())?)?;
    // WHEN every check runs
    let problems: Vec<String> = ALL_CHECKS
        .iter()
        .flat_map(|(what, check)| {
            problems_of(*check, &cfg)
                .into_iter()
                .map(move |p| format!("{what}: {p}"))
        })
        .collect();
    // THEN nothing is reported, so each breakage above is what the checks react to
    assert_no_problems("any check", &problems)
}

/// The `default` of a variable in `terraform/modules/ripple/variables.tf`, as written.
fn module_variable_default(name: &str) -> Result<String> {
    let text = std::fs::read_to_string(terraform_dir().join("modules/ripple/variables.tf"))?;
    let start = text
        .find(&format!("variable \"{name}\" {{"))
        .with_context(|| format!("variable {name} not declared"))?;
    text[start..]
        .lines()
        .take_while(|l| *l != "}")
        .find_map(|l| {
            l.trim()
                .strip_prefix("default")
                .map(|v| v.trim().trim_start_matches('=').trim().to_owned())
        })
        .with_context(|| format!("variable {name} has no default"))
}

#[test]
fn the_deployed_system_log_level_is_the_one_the_cost_model_bills() -> Result<()> {
    // GIVEN the level `ripple bench e2e` assumes (at WARN, no START/END/REPORT lines)
    let level = ripple_common::deploy::LAMBDA_SYSTEM_LOG_LEVEL;
    // THEN the module (which the root sets nothing of) deploys it by default, with the JSON log
    // format it needs
    assert_eq!(
        module_variable_default("lambda_system_log_level")?,
        format!("\"{level}\"")
    );
    let lambda = std::fs::read_to_string(terraform_dir().join("modules/ripple/lambda.tf"))?;
    assert_eq!(
        lambda
            .matches("system_log_level      = var.lambda_system_log_level")
            .count(),
        3,
        "each of the three functions sets it"
    );
    assert_eq!(
        lambda.matches("log_format            = \"JSON\"").count(),
        3
    );
    Ok(())
}

#[test]
fn the_deployed_stream_mapping_is_the_one_ripple_dev_emulates() -> Result<()> {
    // GIVEN the mapping the code and `ripple dev` assume
    let m = ripple_common::deploy::FANOUT_MAPPING;
    // THEN terraform/ deploys exactly it
    for (variable, expected) in [
        ("fanout_batch_size", m.batch_size.to_string()),
        (
            "fanout_maximum_batching_window_seconds",
            m.maximum_batching_window_secs.to_string(),
        ),
        (
            "fanout_parallelization_factor",
            m.parallelization_factor.to_string(),
        ),
        (
            "fanout_bisect_batch_on_function_error",
            m.bisect_batch_on_function_error.to_string(),
        ),
        (
            "fanout_maximum_retry_attempts",
            m.maximum_retry_attempts.to_string(),
        ),
        (
            "fanout_maximum_record_age_seconds",
            m.maximum_record_age_secs.to_string(),
        ),
        (
            "fanout_timeout_seconds",
            m.function_timeout_secs.to_string(),
        ),
    ] {
        assert_eq!(module_variable_default(variable)?, expected, "{variable}");
    }
    Ok(())
}
