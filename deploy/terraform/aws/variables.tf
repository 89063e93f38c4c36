variable "region" {
  description = "AWS region."
  type        = string
  default     = "us-east-1"
}

variable "environment" {
  description = "Environment name, used in resource names (dev, staging, prod)."
  type        = string
  default     = "dev"
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Number of availability zones to spread subnets over."
  type        = number
  default     = 2
  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "az_count must be between 2 and 4 (the ALB needs two AZs)."
  }
}

variable "image_tag" {
  description = "Tag of the llmo image in ECR."
  type        = string
  default     = "latest"
}

variable "model_ref" {
  description = "Model to serve: a path on the EFS volume (/models/x.gguf) or NAME:TAG in the storage service."
  type        = string
  default     = "/models/model.gguf"
}

variable "gateway_count" {
  description = "Gateway tasks (Fargate)."
  type        = number
  default     = 2
}

variable "gateway_cpu" {
  description = "Gateway task CPU units."
  type        = number
  default     = 512
}

variable "gateway_memory" {
  description = "Gateway task memory (MiB)."
  type        = number
  default     = 1024
}

variable "model_min_count" {
  description = "Minimum model tasks."
  type        = number
  default     = 1
}

variable "model_max_count" {
  description = "Maximum model tasks."
  type        = number
  default     = 4
}

variable "model_instance_type" {
  description = "EC2 instance type of the GPU capacity provider for the model service."
  type        = string
  default     = "g5.xlarge"
}

variable "model_gpus" {
  description = "GPUs reserved per model task (0 for CPU-only instances)."
  type        = number
  default     = 1
}

variable "model_cpu" {
  description = "Model task CPU units."
  type        = number
  default     = 4096
}

variable "model_memory" {
  description = "Model task memory (MiB)."
  type        = number
  default     = 14336
}

variable "queue_target" {
  description = "Target vllm:num_requests_waiting per model task for autoscaling."
  type        = number
  default     = 4
}

variable "drain_timeout_seconds" {
  description = "Seconds in-flight requests may run after SIGTERM; ECS stopTimeout is set above it."
  type        = number
  default     = 30
}

variable "allowed_cidrs" {
  description = "CIDRs allowed to reach the public ALB."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "log_retention_days" {
  description = "CloudWatch log retention."
  type        = number
  default     = 14
}
