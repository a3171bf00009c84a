"""The railsdeploy.aws local lab: moto, node containers, loop-device volumes, registry, balancer."""
