use ledger::{resolve, AccountKind, LedgerView, NodeName, Resolution, Violation};

use crate::{acc, twig};

fn on_twig(path: &str) -> Result<Resolution, Violation> {
    let state = twig(|_| {});
    let node = NodeName::new("twig").expect("name");
    resolve(path, &node, |id| state.account(id).map(|a| a.kind.clone()), state.trunkward_account())
}

fn on_trunk(path: &str) -> Result<Resolution, Violation> {
    let trunk = NodeName::new("trunk").expect("name");
    let lookup = |id: &ledger::AccountId| match id.as_str() {
        "branch" => Some(AccountKind::Leafward),
        "admin" => Some(AccountKind::User { admin: true }),
        _ => None,
    };
    resolve(path, &trunk, lookup, None)
}

fn local(id: &str) -> Result<Resolution, Violation> {
    Ok(Resolution::Local(acc(id)))
}

fn leafward(node: &str, rel: &str) -> Result<Resolution, Violation> {
    Ok(Resolution::Leafward { node_account: acc(node), rel_path: rel.to_owned() })
}

fn trunkward(rel: &str) -> Result<Resolution, Violation> {
    Ok(Resolution::Trunkward { node_account: acc("branch"), rel_path: rel.to_owned() })
}

fn path_violation(path: &str, node: &str) -> Result<Resolution, Violation> {
    Err(Violation::Path { rel_path: path.to_owned(), context: node.to_owned() })
}

#[test]
fn resolution_on_a_twig() {
    let table = [
        ("alice", local("alice")),
        ("twig/alice", local("alice")),
        // The reference's S6 example: an absolute payee on its home node.
        ("trunk/branch/twig/alice", local("alice")),
        // The reference's S6 example: a relative path that is not ours goes
        // trunkward with the whole path.
        ("branch/bob", trunkward("branch/bob")),
        ("branch2/dave", trunkward("branch2/dave")),
        ("nobody", trunkward("nobody")),
        ("alice/", trunkward("alice/")),
        ("leaf1/dave", leafward("leaf1", "dave")),
        ("leaf1/deeper/dave", leafward("leaf1", "deeper/dave")),
        ("trunk/branch/twig/leaf1/dave", leafward("leaf1", "dave")),
        ("leaf1/", leafward("leaf1", "")),
        ("twig/nobody", path_violation("twig/nobody", "twig")),
        ("twig/", path_violation("twig/", "twig")),
        ("trunk/branch/twig", path_violation("trunk/branch/twig", "twig")),
        // Up through the parent from this node's own name (names other nodes list for us).
        ("twig/branch", trunkward("")),
        ("twig/branch/bob", trunkward("branch/bob")),
        ("trunk/branch/twig/branch/trunk/carol", trunkward("branch/trunk/carol")),
        ("", path_violation("", "twig")),
    ];
    for (path, expected) in table {
        assert_eq!(on_twig(path), expected, "{path:?}");
    }
}

#[test]
fn resolution_on_the_trunk() {
    let table = [
        ("branch/carol", Ok(Resolution::Leafward { node_account: acc("branch"), rel_path: "carol".to_owned() })),
        (
            "trunk/branch/twig/alice",
            Ok(Resolution::Leafward { node_account: acc("branch"), rel_path: "twig/alice".to_owned() }),
        ),
        ("admin", Ok(Resolution::Local(acc("admin")))),
        ("nobody", path_violation("nobody", "trunk")),
        ("elsewhere/bob", path_violation("elsewhere/bob", "trunk")),
    ];
    for (path, expected) in table {
        assert_eq!(on_trunk(path), expected, "{path:?}");
    }
}

#[test]
fn name_charset() {
    for good in ["alice", "a", "A-b_c.9", &"x".repeat(64)] {
        assert!(ledger::AccountId::new(good).is_ok(), "{good}");
    }
    for bad in ["", "a/b", "a b", ".", "..", "é", "a\n", &"x".repeat(65)] {
        assert!(ledger::AccountId::new(bad).is_err(), "{bad:?}");
    }
}

mod shared_prefixes {
    //! Issue 9, 7a: node `a` and account `alice` share a prefix; paths are
    //! compared segment by segment, so neither resolver may strip one from
    //! the other.
    use ledger::{resolve, route, AccountId, AccountKind, NodeName, Resolution, Route};
    use proptest::prelude::*;

    /// Names drawn from a tiny alphabet so prefixes are shared often.
    fn name() -> impl Strategy<Value = String> {
        "[ab]{1,4}"
    }

    proptest! {
        #![proptest_config(crate::props::config(512))]

        #[test]
        fn an_account_is_found_whatever_prefix_it_shares_with_the_node(
            node in name(),
            accounts in proptest::collection::btree_set(name(), 1..6),
            child in name(),
            has_parent in any::<bool>(),
        ) {
            let this = NodeName::new(&node).expect("node name");
            let accounts: Vec<String> = accounts.into_iter().filter(|a| *a != node && *a != child).collect();
            prop_assume!(!accounts.is_empty() && child != node);
            let parent = AccountId::new("zz").expect("id");
            let lookup = |id: &AccountId| {
                if id.as_str() == child {
                    Some(AccountKind::Leafward)
                } else if accounts.iter().any(|a| a == id.as_str()) {
                    Some(AccountKind::User { admin: false })
                } else if has_parent && id == &parent {
                    Some(AccountKind::Trunkward)
                } else {
                    None
                }
            };
            let trunkward = has_parent.then_some(&parent);
            for account in &accounts {
                let local = Resolution::Local(AccountId::new(account).expect("id"));
                for path in [account.clone(), format!("{node}/{account}"), format!("zz/{node}/{account}")] {
                    prop_assert_eq!(resolve(&path, &this, lookup, trunkward), Ok(local.clone()), "path {}", path);
                    let is_here = |s: &str| accounts.iter().any(|a| a == s);
                    prop_assert_eq!(
                        route(&path, &this, lookup, trunkward, is_here),
                        Ok(Route::Here(account.clone())),
                        "path {}", path
                    );
                }
                // Through the child, the account is the child's to find.
                let below = format!("{child}/{account}");
                prop_assert_eq!(
                    resolve(&below, &this, lookup, trunkward),
                    Ok(Resolution::Leafward {
                        node_account: AccountId::new(&child).expect("id"),
                        rel_path: account.clone()
                    })
                );
            }
            // The node itself, by name or with a trailing slash.
            for path in [node.clone(), format!("{node}/")] {
                prop_assert_eq!(route(&path, &this, lookup, trunkward, |_| false), Ok(Route::Here(String::new())));
            }
        }
    }
}
