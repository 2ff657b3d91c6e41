#!/bin/bash
# First boot of a Clearwater node (occi-so IMS plugin, topology "clearwater"),
# after the ICCLab IMSaaS SO's clearwater-deploy.sh: local_config and
# shared_config for the node, its packages from repo.cw-ngv.com, and its A
# record in the zone (nsupdate with the TSIG key). The DNS node runs BIND.
set -u
NODE=__SERVICE_TYPE__
ZONE=__ZONE__
LOCAL_IP=__LOCAL_IP__
PUBLIC_IP=__PUBLIC_IP__
TSIG_KEY='__TSIG_KEY__'
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
MAAS_IP=__MAAS_IP__
DNSAAS_API=__DNSAAS_API__
DNS_FORWARDER=__DNS_FORWARDER__
__RELATIONS__
__CONFIGURATION__
IMS_ENV
. /etc/mcn/ims.env

if [ "$NODE" = dns ]; then
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y bind9
  cat > /etc/bind/tsig.key << KEY
key $ZONE. { algorithm hmac-md5; secret "$TSIG_KEY"; };
KEY
  cat > /etc/bind/named.conf.local << CONF
include "/etc/bind/tsig.key";
zone "$ZONE" IN { type master; file "/var/lib/bind/db.$ZONE"; allow-update { key $ZONE.; }; };
CONF
  cat > "/var/lib/bind/db.$ZONE" << DB
\$ORIGIN $ZONE.
\$TTL 300
@ IN SOA ns admin 1 3600 600 86400 300
@ IN NS ns
ns IN A $PUBLIC_IP
DB
  chown bind:bind "/var/lib/bind/db.$ZONE"
  if [ -n "$DNS_FORWARDER" ]; then
    sed -i "s|^options {|options {\n\tforwarders { $DNS_FORWARDER; };|" /etc/bind/named.conf.options
  fi
  service bind9 restart
  exit 0
fi

# Every other node: resolve through the IMS DNS node, register itself.
DNS_IP=${DNS_IPS%%;*}
echo "nameserver $DNS_IP" > /etc/resolv.conf
mkdir -p /etc/clearwater
cat > /etc/clearwater/local_config << LOCAL
local_ip=$LOCAL_IP
public_ip=$PUBLIC_IP
public_hostname=$NODE.$ZONE
etcd_cluster=$IMS_ALL_PRIVATE_IPS
LOCAL
cat > /etc/clearwater/shared_config << SHARED
home_domain=$ZONE
sprout_hostname=sprout.$ZONE
hs_hostname=homestead.$ZONE:8888
hs_provisioning_hostname=homestead.$ZONE:8889
ralf_hostname=ralf.$ZONE:10888
xdms_hostname=homer.$ZONE:7888
signup_key=__SIGNUP_KEY__
turn_workaround=secret
SHARED
echo deb http://repo.cw-ngv.com/stable binary/ > /etc/apt/sources.list.d/clearwater.list
curl -fsSL http://repo.cw-ngv.com/repo_key | apt-key add -
apt-get update
case "$NODE" in
  bono) pkgs="bono restund clearwater-management" ;;
  sprout) pkgs="sprout clearwater-management" ;;
  homer) pkgs="homer clearwater-management" ;;
  homestead) pkgs="homestead homestead-prov clearwater-management" ;;
  ellis) pkgs="ellis clearwater-management" ;;
  ralf) pkgs="ralf clearwater-management" ;;
  *) pkgs="" ;;
esac
DEBIAN_FRONTEND=noninteractive apt-get install -y --force-yes $pkgs
nsupdate -y "hmac-md5:$ZONE.:$TSIG_KEY" << UPDATE
server $DNS_IP
zone $ZONE
update add $NODE.$ZONE. 30 A $PUBLIC_IP
update add __HOSTNAME__.$ZONE. 30 A $LOCAL_IP
send
UPDATE
