def test_home_page_renders_with_category_menu(client):
    response = client.get("/")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Intellectual property" in body and "科技金融" not in body
    client.set_cookie("lang", "zh_Hans_CN")  # category names follow the reader's language
    assert "科技金融" in client.get("/").get_data(as_text=True)


def test_unknown_page_is_a_site_styled_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)
    assert "Back to the supermarket" in response.get_data(as_text=True)
