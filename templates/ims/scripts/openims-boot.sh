#!/bin/bash
# First boot of an OpenIMS node (occi-so IMS plugin, topology "openims").
# occi-so fills the placeholders (double-underscored names) with Heat's str_replace: the unit's
# own addresses, its relations' addresses and the MCN endpoints known at
# deploy time. Later changes (provision, update, scaling) reach the node
# through its OS::Heat::SoftwareDeployment (openims-configure.sh).
set -u
hostname __HOSTNAME__
echo __HOSTNAME__ > /etc/hostname
mkdir -p /etc/mcn
cat > /etc/mcn/ims.env << 'IMS_ENV'
IMS_HOSTNAME=__HOSTNAME__
IMS_SERVICE_INSTANCE=__SERVICE_INSTANCE__
IMS_SERVICE_TYPE=__SERVICE_TYPE__
IMS_UNIT=__UNIT__
IMS_ZONE=__ZONE__
IMS_LOCAL_IP=__LOCAL_IP__
IMS_PUBLIC_IP=__PUBLIC_IP__
IMS_ALL_PRIVATE_IPS=__ALL_PRIVATE_IPS__
ZABBIX_IP=__MAAS_IP__
DNSAAS_API=__DNSAAS_API__
DNSAAS_IP=__DNS_FORWARDER__
__RELATIONS__
__CONFIGURATION__
IMS_ENV
. /etc/mcn/ims.env

# The MCN EMS agent in the image listens on 8390; drive the first lifecycle
# steps the IMSSO's adapters drive remotely: preinit, install, and one
# addRelation per related service instance (<SI>_IPS lines above).
ems() {
  curl -fsS -m 60 -X POST -H 'Content-Type: application/json' \
    -d "{\"parameters\": [$2]}" "http://127.0.0.1:8390/$IMS_SERVICE_TYPE/$1" \
    >> /var/log/mcn-ims-boot.log 2>&1
}
for i in $(seq 1 30); do ems preinit '' && break; sleep 5; done
ems install ''
grep -E '^[A-Z0-9]+_IPS=' /etc/mcn/ims.env | while IFS='=' read -r var ips; do
  other=$(echo "${var%_IPS}" | tr 'A-Z' 'a-z')
  ems "addRelation/$other" "\"${ips//\'/}\""
done
if [ -n "$ZABBIX_IP" ] && [ -f /etc/zabbix/zabbix_agentd.conf ]; then
  sed -i "s/^Server=.*/Server=$ZABBIX_IP/; s/^ServerActive=.*/ServerActive=$ZABBIX_IP/" /etc/zabbix/zabbix_agentd.conf
  service zabbix-agent restart || true
fi
