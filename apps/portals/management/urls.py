app_name = "management"
urlpatterns: list = []
