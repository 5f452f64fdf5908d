//! The syntax tree of a spec file, as written, with byte spans.
//!
//! Literals keep their source text (`0.25`, `007`) so the checker, not the parser, decides what
//! is out of range, and the formatter prints exactly what was written. Parentheses are not kept:
//! the formatter re-inserts the ones precedence needs. Two trees are compared "ignoring spans" with
//! [`File::without_spans`].

/// A byte range `start..end` in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A name as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A quoted string, unescaped (`"a\"b"` holds `a"b`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}

/// An integer or decimal literal as written, optionally with a leading `-` where the grammar
/// allows one (vocabularies, tables, constants).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NumLit {
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Import(Import),
    Task(TaskDef),
    Interpretation(InterpDef),
    Pipeline(PipelineDef),
    Circuit(CircuitDef),
    Check(CheckDef),
    Prove(ProveDef),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Import(i) => i.span,
            Item::Task(i) => i.span,
            Item::Interpretation(i) => i.span,
            Item::Pipeline(i) => i.span,
            Item::Circuit(i) => i.span,
            Item::Check(i) => i.span,
            Item::Prove(i) => i.span,
        }
    }

    /// The item's declared name (`None` for imports and unnamed proofs).
    pub fn name(&self) -> Option<&Ident> {
        match self {
            Item::Import(_) => None,
            Item::Task(i) => Some(&i.name),
            Item::Interpretation(i) => Some(&i.name),
            Item::Pipeline(i) => Some(&i.name),
            Item::Circuit(i) => Some(&i.name),
            Item::Check(i) => Some(&i.name),
            Item::Prove(i) => i.name.as_ref(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Import {
    pub path: StrLit,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TaskDef {
    pub name: Ident,
    pub fields: Vec<TaskField>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TaskField {
    Vocab { items: Vec<VocabItem>, span: Span },
    MaxLen { value: NumLit, span: Span },
    Where { expr: SeqExpr, span: Span },
}

impl TaskField {
    pub fn span(&self) -> Span {
        match self {
            TaskField::Vocab { span, .. }
            | TaskField::MaxLen { span, .. }
            | TaskField::Where { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum VocabItem {
    /// `lo..hi` (exclusive) or `lo..=hi`.
    Range {
        lo: NumLit,
        hi: NumLit,
        inclusive: bool,
        span: Span,
    },
    Token(TokenLit),
}

/// A token value as written in a vocabulary or a table.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenLit {
    Int(NumLit),
    Str(StrLit),
    Sym(Ident),
    None(Span),
}

impl TokenLit {
    pub fn span(&self) -> Span {
        match self {
            TokenLit::Int(n) => n.span,
            TokenLit::Str(s) => s.span,
            TokenLit::Sym(i) => i.span,
            TokenLit::None(s) => *s,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct InterpDef {
    pub name: Ident,
    pub task: Ident,
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Let {
        name: Ident,
        expr: SeqExpr,
        span: Span,
    },
    Output {
        expr: SeqExpr,
        span: Span,
    },
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let { span, .. } | Stmt::Output { span, .. } => *span,
        }
    }
}

/// Sequence encodings as written (`numerical` / `categorical`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncodingKw {
    Numerical,
    Categorical,
}

/// A sequence-level (SOp / selector) expression.
#[derive(Clone, Debug, PartialEq)]
pub struct SeqExpr {
    pub kind: SeqExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SeqExprKind {
    Or(Box<SeqExpr>, Box<SeqExpr>),
    And(Box<SeqExpr>, Box<SeqExpr>),
    Not(Box<SeqExpr>),
    /// `numerical e` / `categorical e`.
    Encoded(EncodingKw, Box<SeqExpr>),
    Var(Ident),
    Call {
        func: Ident,
        args: Vec<Arg>,
    },
}

/// An argument of a sequence-level call.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Lambda(Lambda),
    /// A comparison used as a `select` predicate: `==`, `<`, ...
    Cmp(CmpOp, Span),
    Value(ValueLit),
    Seq(SeqExpr),
}

impl Arg {
    pub fn span(&self) -> Span {
        match self {
            Arg::Lambda(l) => l.span,
            Arg::Cmp(_, s) => *s,
            Arg::Value(v) => v.span(),
            Arg::Seq(e) => e.span,
        }
    }
}

/// A constant argument: `true`, `none`, `"("`, `-3`, `0.5`.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueLit {
    Bool(bool, Span),
    None(Span),
    Str(StrLit),
    Num(NumLit),
}

impl ValueLit {
    pub fn span(&self) -> Span {
        match self {
            ValueLit::Bool(_, s) | ValueLit::None(s) => *s,
            ValueLit::Str(s) => s.span,
            ValueLit::Num(n) => n.span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// `|a, b| body`
#[derive(Clone, Debug, PartialEq)]
pub struct Lambda {
    pub params: Vec<Ident>,
    pub body: Expr,
    pub span: Span,
}

/// A scalar expression (lambda bodies).
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl ArithOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    /// Unsigned: `-3` is `Neg(3)` in a body.
    Num(NumLit),
    Bool(bool),
    None,
    Str(String),
    /// A parameter or a vocabulary symbol.
    Name(Ident),
    Call {
        func: Ident,
        args: Vec<Expr>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct PipelineDef {
    pub name: Ident,
    pub stages: Vec<StageDef>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StageDef {
    pub name: Ident,
    pub adapter: Option<AdapterDef>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AdapterDef {
    Clamp(Span),
    Modulo(Span),
    Table {
        rows: Vec<(TokenLit, TokenLit)>,
        span: Span,
    },
}

impl AdapterDef {
    pub fn span(&self) -> Span {
        match self {
            AdapterDef::Clamp(s) | AdapterDef::Modulo(s) => *s,
            AdapterDef::Table { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CircuitDef {
    pub name: Ident,
    pub program: Ident,
    pub entries: Vec<CircuitEntry>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CircuitEntry {
    /// The variable; `output` is written as the keyword and kept as the name `output`.
    pub var: Ident,
    pub hooks: Vec<HookRefAst>,
    pub span: Span,
}

/// `blocks.0.attn.hook_z[1]` as written.
#[derive(Clone, Debug, PartialEq)]
pub struct HookRefAst {
    pub name: String,
    pub head: Option<NumLit>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckDef {
    pub name: Ident,
    pub fields: Vec<CheckField>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CheckField {
    Model {
        model: ModelAst,
        span: Span,
    },
    Compare {
        names: Vec<Ident>,
        span: Span,
    },
    Samples {
        value: NumLit,
        /// `family trained`: where the implementations come from (default: compiled).
        family: Option<Ident>,
        span: Span,
    },
    Seed {
        value: NumLit,
        span: Span,
    },
    /// `epsilon 1e-3`: the fit gap a verdict needs besides its interval.
    Epsilon {
        value: NumLit,
        span: Span,
    },
    /// `expect goal(args) [bound]`. An argument is a name or, in `similarity`, a measure such as
    /// `cka:linear` (kept in an [`Ident`] as written).
    Expect {
        goal: Ident,
        args: Vec<Ident>,
        bound: Option<BoundAst>,
        span: Span,
    },
}

/// What a check's `model` names.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelAst {
    /// `model "dir"`: a directory relative to the spec file.
    Dir(StrLit),
    /// `model compiled(I)` / `model compiled(I, seed S)`: the harness compiles I itself.
    Compiled {
        program: Ident,
        seed: Option<NumLit>,
    },
}

/// The bound of a numeric expectation.
#[derive(Clone, Debug, PartialEq)]
pub enum BoundAst {
    /// `>= 0.95`
    Cmp(CmpOp, NumLit),
    /// `~= 0.93 +- 0.02` (also `≈ 0.93 ± 0.02`).
    Approx { value: NumLit, tolerance: NumLit },
}

impl CheckField {
    pub fn span(&self) -> Span {
        match self {
            CheckField::Model { span, .. }
            | CheckField::Compare { span, .. }
            | CheckField::Samples { span, .. }
            | CheckField::Seed { span, .. }
            | CheckField::Epsilon { span, .. }
            | CheckField::Expect { span, .. } => *span,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProveDef {
    pub name: Option<Ident>,
    pub goal: Ident,
    pub args: Vec<ProofArg>,
    pub timeout: Option<NumLit>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProofArg {
    Name(Ident),
    /// `x = y` in `aligned(a, b, x = y)`.
    Alias(Ident, Ident),
}

// ---------------------------------------------------------------------------------------------
// Span erasure, for comparing trees that differ only in layout.

/// Visits every span of a tree mutably.
pub trait VisitSpans {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span));
}

impl File {
    /// A copy with every span zeroed: two files that differ only in layout and comments compare
    /// equal after this.
    pub fn without_spans(&self) -> File {
        let mut f = self.clone();
        f.visit_spans(&mut |s| *s = Span::default());
        f
    }
}

impl VisitSpans for File {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        for item in &mut self.items {
            item.visit_spans(f);
        }
    }
}

impl VisitSpans for Ident {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(&mut self.span);
    }
}

impl VisitSpans for StrLit {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(&mut self.span);
    }
}

impl VisitSpans for NumLit {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        f(&mut self.span);
    }
}

impl VisitSpans for Item {
    // One function (~145 lines): one arm per item kind and field, so a new field is visited
    // where its item is.
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        match self {
            Item::Import(i) => {
                i.path.visit_spans(f);
                f(&mut i.span);
            }
            Item::Task(t) => {
                t.name.visit_spans(f);
                for field in &mut t.fields {
                    match field {
                        TaskField::Vocab { items, span } => {
                            for it in items {
                                match it {
                                    VocabItem::Range { lo, hi, span, .. } => {
                                        lo.visit_spans(f);
                                        hi.visit_spans(f);
                                        f(span);
                                    }
                                    VocabItem::Token(t) => t.visit_spans(f),
                                }
                            }
                            f(span);
                        }
                        TaskField::MaxLen { value, span } => {
                            value.visit_spans(f);
                            f(span);
                        }
                        TaskField::Where { expr, span } => {
                            expr.visit_spans(f);
                            f(span);
                        }
                    }
                }
                f(&mut t.span);
            }
            Item::Interpretation(i) => {
                i.name.visit_spans(f);
                i.task.visit_spans(f);
                for s in &mut i.stmts {
                    match s {
                        Stmt::Let { name, expr, span } => {
                            name.visit_spans(f);
                            expr.visit_spans(f);
                            f(span);
                        }
                        Stmt::Output { expr, span } => {
                            expr.visit_spans(f);
                            f(span);
                        }
                    }
                }
                f(&mut i.span);
            }
            Item::Pipeline(p) => {
                p.name.visit_spans(f);
                for st in &mut p.stages {
                    st.name.visit_spans(f);
                    if let Some(a) = &mut st.adapter {
                        match a {
                            AdapterDef::Clamp(s) | AdapterDef::Modulo(s) => f(s),
                            AdapterDef::Table { rows, span } => {
                                for (k, v) in rows {
                                    k.visit_spans(f);
                                    v.visit_spans(f);
                                }
                                f(span);
                            }
                        }
                    }
                    f(&mut st.span);
                }
                f(&mut p.span);
            }
            Item::Circuit(c) => {
                c.name.visit_spans(f);
                c.program.visit_spans(f);
                for e in &mut c.entries {
                    e.var.visit_spans(f);
                    for h in &mut e.hooks {
                        if let Some(n) = &mut h.head {
                            n.visit_spans(f);
                        }
                        f(&mut h.span);
                    }
                    f(&mut e.span);
                }
                f(&mut c.span);
            }
            Item::Check(c) => {
                c.name.visit_spans(f);
                for field in &mut c.fields {
                    match field {
                        CheckField::Model { model, span } => {
                            match model {
                                ModelAst::Dir(path) => path.visit_spans(f),
                                ModelAst::Compiled { program, seed } => {
                                    program.visit_spans(f);
                                    if let Some(s) = seed {
                                        s.visit_spans(f);
                                    }
                                }
                            }
                            f(span);
                        }
                        CheckField::Compare { names, span } => {
                            for n in names {
                                n.visit_spans(f);
                            }
                            f(span);
                        }
                        CheckField::Samples {
                            value,
                            family,
                            span,
                        } => {
                            value.visit_spans(f);
                            if let Some(id) = family {
                                id.visit_spans(f);
                            }
                            f(span);
                        }
                        CheckField::Seed { value, span } | CheckField::Epsilon { value, span } => {
                            value.visit_spans(f);
                            f(span);
                        }
                        CheckField::Expect {
                            goal,
                            args,
                            bound,
                            span,
                        } => {
                            goal.visit_spans(f);
                            for a in args {
                                a.visit_spans(f);
                            }
                            match bound {
                                Some(BoundAst::Cmp(_, n)) => n.visit_spans(f),
                                Some(BoundAst::Approx { value, tolerance }) => {
                                    value.visit_spans(f);
                                    tolerance.visit_spans(f);
                                }
                                None => {}
                            }
                            f(span);
                        }
                    }
                }
                f(&mut c.span);
            }
            Item::Prove(p) => {
                if let Some(n) = &mut p.name {
                    n.visit_spans(f);
                }
                p.goal.visit_spans(f);
                for a in &mut p.args {
                    match a {
                        ProofArg::Name(n) => n.visit_spans(f),
                        ProofArg::Alias(a, b) => {
                            a.visit_spans(f);
                            b.visit_spans(f);
                        }
                    }
                }
                if let Some(t) = &mut p.timeout {
                    t.visit_spans(f);
                }
                f(&mut p.span);
            }
        }
    }
}

impl VisitSpans for TokenLit {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        match self {
            TokenLit::Int(n) => n.visit_spans(f),
            TokenLit::Str(s) => s.visit_spans(f),
            TokenLit::Sym(i) => i.visit_spans(f),
            TokenLit::None(s) => f(s),
        }
    }
}

impl VisitSpans for SeqExpr {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        match &mut self.kind {
            SeqExprKind::Or(a, b) | SeqExprKind::And(a, b) => {
                a.visit_spans(f);
                b.visit_spans(f);
            }
            SeqExprKind::Not(a) | SeqExprKind::Encoded(_, a) => a.visit_spans(f),
            SeqExprKind::Var(i) => i.visit_spans(f),
            SeqExprKind::Call { func, args } => {
                func.visit_spans(f);
                for a in args {
                    match a {
                        Arg::Lambda(l) => l.visit_spans(f),
                        Arg::Cmp(_, s) => f(s),
                        Arg::Value(v) => match v {
                            ValueLit::Bool(_, s) | ValueLit::None(s) => f(s),
                            ValueLit::Str(s) => s.visit_spans(f),
                            ValueLit::Num(n) => n.visit_spans(f),
                        },
                        Arg::Seq(e) => e.visit_spans(f),
                    }
                }
            }
        }
        f(&mut self.span);
    }
}

impl VisitSpans for Lambda {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        for p in &mut self.params {
            p.visit_spans(f);
        }
        self.body.visit_spans(f);
        f(&mut self.span);
    }
}

impl VisitSpans for Expr {
    fn visit_spans(&mut self, f: &mut dyn FnMut(&mut Span)) {
        match &mut self.kind {
            ExprKind::If(a, b, c) => {
                a.visit_spans(f);
                b.visit_spans(f);
                c.visit_spans(f);
            }
            ExprKind::Or(a, b)
            | ExprKind::And(a, b)
            | ExprKind::Cmp(_, a, b)
            | ExprKind::Arith(_, a, b) => {
                a.visit_spans(f);
                b.visit_spans(f);
            }
            ExprKind::Not(a) | ExprKind::Neg(a) => a.visit_spans(f),
            ExprKind::Num(n) => n.visit_spans(f),
            ExprKind::Bool(_) | ExprKind::None | ExprKind::Str(_) => {}
            ExprKind::Name(i) => i.visit_spans(f),
            ExprKind::Call { func, args } => {
                func.visit_spans(f);
                for a in args {
                    a.visit_spans(f);
                }
            }
        }
        f(&mut self.span);
    }
}
