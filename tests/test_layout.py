"""The package layout's promises that README and the scripts rely on."""

import marketplace

# Every command README and scripts/serve(-production) call, plus Flask's own.
DOCUMENTED_COMMANDS = {
    "backup", "create-staff", "drain-outbox", "init-db", "load-demo", "load-demo-activity",
    "outbox", "publish-reviews", "rebuild-console-figures", "recompute-credibility", "reindex",
    "restore", "run-order-timers", "run-settlement", "seed-demo-vouchers", "send-mail",
    "capture-accepted-holds",
}


def test_every_command_keeps_its_flat_name(app):
    names = set(app.cli.list_commands(None))
    assert names >= DOCUMENTED_COMMANDS
    # Package groups ("catalog", "orders", ...) are only containers; they are not commands.
    assert not names & {"catalog", "orders", "providers", "demo", "marketplace"}


def test_extensions_live_in_their_own_module_not_in_the_factory():
    # Views import csrf and login_manager from marketplace.extensions; importing a view must
    # not need the app factory's module.
    from marketplace import extensions

    assert not hasattr(marketplace, "csrf") and not hasattr(marketplace, "login_manager")
    assert extensions.login_manager._user_callback is extensions.load_user


def test_a_blueprint_command_runs_with_an_app_context(app):
    result = app.test_cli_runner().invoke(args=["publish-reviews"])
    assert result.exit_code == 0, result.output
    assert "reviews published" in result.output
