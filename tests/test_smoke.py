def test_login_and_databases_page(auth, client):
    assert client.get("/").status_code == 302
    auth.login("admin")
    page = client.get("/databases")
    assert page.status_code == 200
    assert b"order_db" in page.data


def test_healthz_all_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["down"] == []
