"""Links built faster than ``url_for`` (marketplace/templating.py) must be exactly the URLs
``url_for`` builds: a wrong link is a broken page or a lost filter."""

from flask import url_for

from marketplace.templating import memo_url_for, this_page_url


def test_links_to_this_page_are_the_urls_url_for_builds(app):
    """Facet, filter-chip and page links are built from this page's path once per request
    (marketplace/templating.py, this_page_url); each must be byte for byte the URL
    ``url_for`` builds, whatever the query holds."""
    queries = [
        {},
        {"q": "专利 申请", "region": "suzhou", "page": 2},
        {"q": "R&D / testing + 50% #1", "price_max": 100000, "voucher": "1"},
        {"q": "a=b?c:d@e,f;g'h(i)*!$", "sort": "price_asc"},
        {"q": None, "category": "ip", "type": ["bank", "vc"]},
    ]
    for path, endpoint, view_args in (("/search", "search.search_page", {}),
                                      ("/c/ip", "catalog.category", {"slug": "ip"})):
        with app.test_request_context(f"{path}?q=old"):
            app.preprocess_request()
            for args in queries:
                assert this_page_url(args) == url_for(endpoint, **view_args, **args), args



def test_remembered_links_follow_the_script_root_and_leave_static_files_alone(app):
    """A link remembered under one mount point is not reused under another (a proxy may
    serve the site under a prefix), and static files keep their current digest."""
    cases = [("main.home", {}), ("catalog.product", {"product_id": 7}),
             ("catalog.category", {"slug": "ip"}), ("accounts.login", {"next": "/c/ip?page=2"}),
             ("search.search_page", {"q": "专利"}),
             ("catalog.product", {"product_id": 7, "_anchor": "reviews"})]
    for root in ("", "/market"):
        with app.test_request_context("/", base_url=f"http://localhost{root}"):
            for _twice in range(2):
                for endpoint, values in cases:
                    built = memo_url_for(endpoint, **values)
                    assert built == url_for(endpoint, **values), (root, endpoint)
                    assert built.startswith(f"{root}/"), built
            assert memo_url_for("static", filename="css/site.css") == url_for(
                "static", filename="css/site.css")
    with app.test_request_context("/"):
        assert memo_url_for("catalog.product", product_id=7) == "/products/7"
