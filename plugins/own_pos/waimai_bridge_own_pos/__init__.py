"""waimai-bridge plugin for the chain's own POS and own ordering channel."""
