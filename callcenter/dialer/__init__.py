"""Due callback task → consent and hours check → AMI Originate → outcome → task closed or due."""
