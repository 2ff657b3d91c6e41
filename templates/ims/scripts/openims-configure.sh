#!/bin/bash
# Configuration of a running OpenIMS node (occi-so IMS plugin, topology
# "openims"): an OS::Heat::SoftwareConfig (group: script) whose inputs come
# in as environment variables. Heat runs it at CREATE and again at every
# stack UPDATE that changes them: provision (MCN endpoints, start), update
# (new attributes) and scaling (new related units' addresses).
set -u
mkdir -p /etc/mcn
{
  echo "IMS_HOSTNAME=$IMS_HOSTNAME"
  echo "IMS_SERVICE_TYPE=$IMS_SERVICE_TYPE"
  echo "IMS_ZONE=$IMS_ZONE"
  echo "IMS_ALL_PRIVATE_IPS=$IMS_ALL_PRIVATE_IPS"
  echo "ZABBIX_IP=$MAAS_IP"
  echo "DNSAAS_API=$DNSAAS_API"
  echo "DNSAAS_IP=$DNS_FORWARDER"
  echo "IMS_LIFECYCLE=$IMS_LIFECYCLE"
  echo "$IMS_RELATIONS"
} > /etc/mcn/ims.runtime.env

ems() {
  curl -fsS -m 60 -X POST -H 'Content-Type: application/json' \
    -d "{\"parameters\": [$2]}" "http://127.0.0.1:8390/$IMS_SERVICE_TYPE/$1"
}
# Relations may have changed (a related service instance scaled).
echo "$IMS_RELATIONS" | grep -E '^[A-Z0-9]+_IPS=' | while IFS='=' read -r var ips; do
  other=$(echo "${var%_IPS}" | tr 'A-Z' 'a-z')
  ems "addRelation/$other" "\"${ips//\'/}\""
done
# MaaS: point the Zabbix agent at the monitoring server.
if [ -n "$MAAS_IP" ] && [ -f /etc/zabbix/zabbix_agentd.conf ]; then
  sed -i "s/^Server=.*/Server=$MAAS_IP/; s/^ServerActive=.*/ServerActive=$MAAS_IP/" /etc/zabbix/zabbix_agentd.conf
  service zabbix-agent restart || true
fi
# DNSaaS: register this node's A record in the IMS zone.
if [ -n "$DNSAAS_API" ]; then
  local_ip=$(. /etc/mcn/ims.env; echo "$IMS_LOCAL_IP")
  curl -fsS -m 30 -X POST -H 'Content-Type: application/json' \
    -d "{\"domain_name\": \"$IMS_ZONE\", \"record_name\": \"$IMS_HOSTNAME\", \"record_type\": \"A\", \"record_data\": \"$local_ip\"}" \
    "$DNSAAS_API/records" || echo "DNSaaS at $DNSAAS_API did not take the record" >&2
fi
if [ -n "$DNS_FORWARDER" ]; then
  grep -q "^nameserver $DNS_FORWARDER" /etc/resolv.conf || echo "nameserver $DNS_FORWARDER" >> /etc/resolv.conf
fi
# Provisioned: the IMSSO's last adapter steps.
if [ "$IMS_LIFECYCLE" = provisioned ]; then
  ems preStart '' && ems start ''
fi
