use super::*;

fn fmt(src: &str) -> String {
    format_source("t.interp", src).unwrap_or_else(|e| panic!("{}", e.render_plain()))
}

#[test]
fn canonical_layout() {
    let src = "task   reverse{vocab{a,b,c} max_len   4}
interpretation by_length for reverse{length=selector_width(select(tokens,tokens,true))
opp=map2(|n,i|n-i-1,length,indices)
output aggregate(select(indices,opp,==),tokens)}
circuit c for by_length { length -> blocks.0.attn.hook_z[0],blocks.0.hook_mlp_out
 output -> blocks.3.attn.hook_z[0] }
check m { model \"models/reverse\" compare a vs b expect iia(c)>=0.95 }
check t { compare a vs b samples   4   family   trained }
prove equivalent(a,b)
prove x:aligned(a,b,l=n) timeout 3
";
    let want = "task reverse {
  vocab   {a, b, c}
  max_len 4
}

interpretation by_length for reverse {
  length = selector_width(select(tokens, tokens, true))
  opp    = map2(|n, i| n - i - 1, length, indices)
  output   aggregate(select(indices, opp, ==), tokens)
}

circuit c for by_length {
  length -> blocks.0.attn.hook_z[0], blocks.0.hook_mlp_out
  output -> blocks.3.attn.hook_z[0]
}

check m {
  model   \"models/reverse\"
  compare a vs b
  expect  iia(c) >= 0.95
}

check t {
  compare a vs b
  samples 4 family trained
}

prove equivalent(a, b)
prove x: aligned(a, b, l = n) timeout 3
";
    assert_eq!(fmt(src), want);
    assert_eq!(fmt(want), want);
}

#[test]
fn keeps_comments_and_blank_lines() {
    let src = "# file header

task t {  # the task
  # the vocabulary
  vocab {a, b}   # two tokens
  max_len 3
  # dangling
}
# about i
interpretation i for t {
  x = map(|v|   # inside
     v == a, tokens)

  output x # the output
} # after i
# the end
";
    let want = "# file header

task t {  # the task
  # the vocabulary
  vocab   {a, b}  # two tokens
  max_len 3
  # dangling
}

# about i
interpretation i for t {
  # inside
  x = map(|v| v == a, tokens)

  output x  # the output
}  # after i

# the end
";
    let got = fmt(src);
    assert_eq!(got, want);
    assert_eq!(fmt(&got), got);
}

#[test]
fn minimal_parentheses() {
    let src = "interpretation i for t { output map(|x| (-(x + 1)) * ((2)) - (-x) - (1 - 2) == (if x == 1 then (a) else (b)) and not (x < 2 or x > 3), tokens) or (not s and (u or v)) }";
    let got = fmt(src);
    assert!(got.contains(
            "map(|x| -(x + 1) * 2 - -x - (1 - 2) == (if x == 1 then a else b) and not (x < 2 or x > 3), tokens) or (not s and (u or v))"
        ), "{got}");
}

#[test]
fn long_lines_wrap_and_comments_align() {
    let src = "interpretation i for t {
  shifter = map2(|x, y| if x % 2 == 0 then x else (if y % 2 == 0 then y - x else y - x - 1), indices, len) # wrap
  s = select(indices, indices, ==) # short
}
pipeline algo_3 = sort |> interleave_reverse via table { none -> 0 } |> check_all_equal via table { none -> 0, 11 -> 10, 12 -> 10, 13 -> 10, 14 -> 10, 15 -> 10, 16 -> 10, 17 -> 10 }
";
    let want = "interpretation i for t {
  shifter = map2(|x, y| if x % 2 == 0 then x else if y % 2 == 0 then y - x else y - x - 1, indices,
                 len)                     # wrap
  s       = select(indices, indices, ==)  # short
}

pipeline algo_3 = sort
  |> interleave_reverse via table { none -> 0 }
  |> check_all_equal via table {
       none -> 0, 11 -> 10, 12 -> 10, 13 -> 10, 14 -> 10, 15 -> 10, 16 -> 10, 17 -> 10,
     }
";
    let got = fmt(src);
    assert_eq!(got, want);
    assert_eq!(fmt(&got), got);
}

#[test]
fn consecutive_one_liners_stay_together() {
    let src = "import \"a.interp\"\nimport \"b.interp\"\n\nimport \"c.interp\"\nprove well_formed(i)\nprove well_formed(j)\n";
    assert_eq!(
        fmt(src),
        "import \"a.interp\"\nimport \"b.interp\"\n\nimport \"c.interp\"\n\nprove well_formed(i)\nprove well_formed(j)\n"
    );
}
