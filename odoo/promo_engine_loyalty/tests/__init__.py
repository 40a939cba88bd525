from . import test_promo_engine_loyalty
