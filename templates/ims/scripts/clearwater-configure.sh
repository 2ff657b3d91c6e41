#!/bin/bash
# Configuration of a running Clearwater node (occi-so IMS plugin, topology
# "clearwater"): an OS::Heat::SoftwareConfig (group: script); Heat passes the
# inputs as environment variables and runs it again at every stack UPDATE
# that changes them (provision, update, a cluster that scaled).
set -u
mkdir -p /etc/mcn
{
  echo "IMS_ALL_PRIVATE_IPS=$IMS_ALL_PRIVATE_IPS"
  echo "MAAS_IP=$MAAS_IP"
  echo "DNSAAS_API=$DNSAAS_API"
  echo "DNS_FORWARDER=$DNS_FORWARDER"
  echo "IMS_LIFECYCLE=$IMS_LIFECYCLE"
  echo "$IMS_RELATIONS"
} > /etc/mcn/ims.runtime.env
if [ "$IMS_SERVICE_TYPE" = dns ]; then
  exit 0
fi
# etcd membership follows the cluster sizes.
if [ -f /etc/clearwater/local_config ]; then
  sed -i "s/^etcd_cluster=.*/etcd_cluster=$IMS_ALL_PRIVATE_IPS/" /etc/clearwater/local_config
fi
# MaaS: SNMP and monit alarms go to the monitoring server.
if [ -n "$MAAS_IP" ] && [ -f /etc/clearwater/shared_config ]; then
  sed -i '/^snmp_ip=/d' /etc/clearwater/shared_config
  echo "snmp_ip=$MAAS_IP" >> /etc/clearwater/shared_config
fi
if [ "$IMS_LIFECYCLE" = provisioned ] && [ -x /usr/share/clearwater/clearwater-config-manager/scripts/upload_shared_config ]; then
  /usr/share/clearwater/clearwater-config-manager/scripts/upload_shared_config || true
  service clearwater-infrastructure restart || true
fi
