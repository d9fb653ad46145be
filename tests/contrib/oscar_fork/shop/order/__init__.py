default_app_config = 'tests.contrib.oscar_fork.shop.order.apps.OrderConfig'
