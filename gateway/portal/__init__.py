"""The landlord's portal: a small server-rendered web app served by the gateway on the LAN."""
