from . import event_builder
from . import promo_engine_outbox
from . import pos_order
from . import res_partner
from . import res_config_settings
