"""waimai-bridge plugin for the chain's own POS and own ordering channel (the reference plugin).

The push format, signing, events and configuration are documented in the distribution's
README; :mod:`waimai_bridge_own_pos.plugin` holds the hooks.
"""
