import re
from collections import defaultdict

from conftest import post_form
from pseudo_locale import PSEUDO_LOCALE
from test_i18n_coverage import (
    DEMO_PASSWORD,
    ROLES,
    DataStrings,
    VisibleText,
    argument_values,
    database_strings,
    get_routes,
    load_demo,
)

from marketplace.database import db

MINE = re.compile(r"^(console|settlement|credibility|staff|orders_admin)\.|^reviews\.staff_list$|^accounts\.lockouts$")
BASE_ONLY = {"Compare", "Compare services"}


def test_mine(app):
    load_demo(app)
    with app.app_context():
        data = DataStrings(database_strings(db.session))
    problems = defaultdict(set)
    for role, email in ROLES.items():
        client = app.test_client()
        client.set_cookie("lang", PSEUDO_LOCALE)
        if email:
            post_form(client, "/login", {"email": email, "password": DEMO_PASSWORD})
        with app.app_context():
            values = argument_values(db.session, role, email)
        for rule in get_routes(app):
            if not MINE.search(rule.endpoint):
                continue
            if any(values.get(arg) is None for arg in rule.arguments):
                continue
            with app.test_request_context():
                from flask import url_for
                url = url_for(rule.endpoint, **{a: values[a] for a in rule.arguments})
            response = client.get(url, follow_redirects=True)
            if response.status_code >= 500:
                problems[f"{role} {rule.endpoint}"].add(f"HTTP {response.status_code}")
                continue
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            parser = VisibleText()
            parser.feed(response.get_data(as_text=True))
            for text in parser.texts:
                left = data.leftover(text)
                if left:
                    problems[f"{role} {rule.endpoint}"].add(f"{' '.join(text.split())[:100]} [{' '.join(left[:4])}]")
    with open("/tmp/zs_cov_mine.txt", "w") as out:
        for page, texts in sorted(problems.items()):
            out.write(f"{page}:\n")
            for t in sorted(texts):
                out.write(f"    {t}\n")
