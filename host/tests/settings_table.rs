//! The README's settings table against the settings the code declares:
//! every declared setting has a row with its flag, environment variable
//! and default, and no row names a setting the code does not declare.

use std::collections::BTreeMap;

use clap::CommandFactory;

/// One row of the table: the first backticked word of the flag and
/// environment cells, and the default cell as written.
#[derive(Debug)]
struct Row {
    env: String,
    default: String,
}

fn first_code(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let len = cell[start..].find('`')?;
    Some(&cell[start..start + len])
}

fn readme_rows() -> BTreeMap<String, Row> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let mut lines = readme.lines().skip_while(|l| !l.starts_with("| flag | environment | default |"));
    assert!(
        lines.next().is_some(),
        "README.md has no settings table (| flag | environment | default | meaning |)"
    );
    let mut rows = BTreeMap::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(cells.len() >= 5, "a settings row needs four cells: {line}");
        let flag = first_code(cells[1]).unwrap_or_else(|| panic!("no `--flag` in {line}")).to_owned();
        let env = first_code(cells[2]).unwrap_or(cells[2]).to_owned();
        let row = Row { env, default: cells[3].to_owned() };
        assert!(rows.insert(flag.clone(), row).is_none(), "{flag} has two rows");
    }
    rows
}

/// What the README must say the default is: clap's default value in
/// backticks, `off` for a switch, or for a setting whose default is not a
/// value (none, random, from the request) what its help says in
/// `[default: …]`.
fn shown_default(arg: &clap::Arg) -> String {
    if matches!(arg.get_action(), clap::ArgAction::SetTrue) {
        return "off".into();
    }
    let values: Vec<String> =
        arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect();
    if !values.is_empty() && !arg.is_hide_default_value_set() {
        return format!("`{}`", values.join(","));
    }
    let help = arg.get_long_help().or(arg.get_help()).map(ToString::to_string).unwrap_or_default();
    let tag = help.rfind("[default: ").unwrap_or_else(|| {
        panic!("--{}: no default value and no `[default: …]` in its help", arg.get_long().unwrap_or("?"))
    });
    help[tag + "[default: ".len()..].trim_end().trim_end_matches(']').to_owned()
}

#[test]
fn the_readme_settings_table_matches_the_declared_settings() {
    let mut rows = readme_rows();
    let command = acemux::config::Cli::command();
    let mut problems = Vec::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let flag = format!("--{long}");
        let Some(row) = rows.remove(&flag) else {
            problems.push(format!("{flag} is declared but has no row in README.md's settings table"));
            continue;
        };
        let env = arg.get_env().map_or_else(|| "—".to_owned(), |e| e.to_string_lossy().into_owned());
        if row.env != env {
            problems.push(format!("{flag}: the README says environment {}, the code {env}", row.env));
        }
        let default = shown_default(arg);
        if !row.default.starts_with(&default) {
            problems.push(format!(
                "{flag}: the README's default `{}` does not start with {default}",
                row.default
            ));
        }
    }
    for flag in rows.keys() {
        problems.push(format!("README.md's settings table has {flag}, which the code does not declare"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
