//! The `ripple` command.

fn main() {
    eprintln!("ripple: `ripple dev` is coming; see the README");
}
