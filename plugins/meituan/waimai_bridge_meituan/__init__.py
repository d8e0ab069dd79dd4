"""waimai-bridge plugin for the Meituan Waimai (美团外卖) open platform."""
